package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"

	"timegate/internal/control"
	"timegate/internal/gateway"
	"timegate/internal/report"
	"timegate/internal/secfile"
	"timegate/symkey"
)

// ctlCommands lists every control-socket command, in the order the usage
// text shows them.
func ctlCommands() []ctlCommand {
	return []ctlCommand{
		{name: "status", short: "synchronised or not and why, stratum, offset, root distance (chronyc tracking)", help: "What timegate serves and why (chronyc tracking): synchronised or not and why,\nstratum, reference, soft-clock offset and frequency, root delay/dispersion/distance,\nleap, age of the last estimate, uptime, config file; with auditlog the audit\nlog (last seq, segments, disk use, dropped events, failing writes) and with\nauditship its shipping (collector, acked seq, backlog, alarm). Exit 3 when\nunsynchronised (leap 3, stratum 16: clients will not use the time).", call: callStatus},
		{name: "sources", short: "each upstream: state and why, auth, mode, stratum, poll, reach, offset, delay, jitter", help: "Each upstream (chronyc sources -v, sourcestats and authdata in one table):\nstate and why, authentication, exchange mode (interleaved or basic; xleave),\nstratum, poll, reach, last offset, delay, jitter.", call: callSources},
		{name: "serverstats", short: "requests by verdict and auth, KoD by code, NTS-KE outcomes, rate tables", help: "Requests by verdict and authentication, requests the kernel dropped\n(socket buffer full, see ntprcvbuf), Kiss-o'-Death by code, NTS NAKs,\nNTS-KE sessions and failures by reason, rate-table use (chronyc serverstats).", call: callServerStats},
		{name: "clients", short: "[-n N] the busiest client prefixes in the rate table", help: "The busiest client prefixes in the rate table, most requests first.", flags: clientsFlags, call: callClients},
		{name: "keys nts list", short: "the NTS cookie key ring: ids, roles, age, rotation schedule", help: "The NTS cookie key ring: ids, roles (next, sealing, opening), age.", call: keyRingCall(gateway.CmdKeysList)},
		{name: "keys nts rotate", short: "[--fleet] the pre-made next key starts sealing now; old cookies still open", help: "Make the pre-made next key the sealing key now (the ring is saved before it\nseals); kept keys still open cookies issued before, so clients need no NTS-KE.\nWith --fleet (ntskeystore): publish a new key in etcd as \"next\"; every gateway\nloads it, and it seals everywhere once the propagation delay has passed.\nRefused while etcd is unreachable.", flags: rotateFlags, call: callRotate},
		{name: "keys nts prune", short: "[-keep N] [--fleet] drop old cookie keys (their cookies stop opening)", help: "Drop old cookie keys, keeping the next key, the sealing key and KEEP-1 older\nones: cookies sealed under dropped keys stop opening (clients redo NTS-KE).\nFor a key that may have leaked: rotate, then prune.\nWith --fleet (ntskeystore): publish a sealed revocation cutoff in etcd; every\ngateway drops the same keys at once (not after the grace period), and the\nsealing key is never dropped: after rotate --fleet, wait until the new key\nseals (keys nts list), then prune --fleet. Refused while etcd is unreachable.", flags: pruneFlags, call: callPrune},
		{name: "policy publish", short: "publish FILE's restrict/allow/deny/ratelimit lines to every gateway of the fleet", usage: "FILE", nargs: 1, help: "Publish the access policy and NTP rate limit of FILE (restrict, allow, deny\nand ratelimit lines only; anything else is refused) to the fleet store\n(ntskeystore), sealed under the wrapping key: every gateway applies it in place\nof its own file's rules at once, keeps it through etcd outages, and falls back\nto its file's if it is deleted. The daemon reads FILE as its own user.", call: callPolicyPublish},
		{name: "keys sym list", short: "ids and types in the symmetric keys file (never the secrets)", help: "The keys in the symmetric keys file (ids and types, never the secrets).", call: callSymList},
		{name: "keys sym gen", short: "[-id ID] [-type AES128|AES256] add a key to the keys file and reload", help: "Generate a key (AES128 by default; AES256), append it to the keys file (atomic write\nkeeping its owner and mode, 0600 when new) and reload; prints the line for the\nclient's keys file. A daemon that dropped privileges may not write its keys file:\ngatectl run as root then edits the file itself and asks for the reload.", flags: symGenFlags, call: callSymGen},
		{name: "keys sym remove", short: "remove key ID from the keys file and reload", usage: "ID", nargs: 1, help: "Remove key ID from the keys file and reload (run as root, gatectl edits the\nfile itself when the unprivileged daemon may not).", call: callSymRemove},
		{name: "cert show", short: "the NTS-KE certificate: names, validity, fingerprint, chain", help: "The NTS-KE certificate in use: names, validity, fingerprint, chain length.", call: certCall(gateway.CmdCertShow)},
		{name: "cert reload", short: "re-read the certificate files now (a bad pair is refused)", help: "Re-read the certificate and key files now; a bad pair is refused and the\nprevious one keeps serving.", call: certCall(gateway.CmdCertReload)},
		{name: "audit rotate", short: "seal the live audit file as a signed segment now; prints it and what retention deleted", help: "Seal the live audit file now, as auditrotate size does when it is reached: a\nsigned checkpoint ends it, it is renamed to FILE-NNNNNNNNNNNN (the seq of its\nfirst record), and the new live file starts with an audit.segment record that\ncontinues the chain. Prints the sealed segment, its seq range, and the segments\nretention (auditrotate keep) deleted, each recorded as audit.segment.prune.", call: callAuditRotate},
		{name: "reload", short: "re-read the configuration; names what needs a restart", help: "Re-read the configuration (policy, rate limits, keys, certificate); prints the\ndirectives that need a restart. A file with errors is refused whole.", call: callReload},
	}
}

func callStatus(c *ctlClient, _ []string, _ any, out io.Writer) int {
	var st report.Status
	if code := c.do(gateway.CmdStatus, nil, &st); code != exitOK {
		return code
	}
	if code := c.emit(out, st, func() { printStatus(out, &st) }); code != exitOK {
		return code
	}
	// Exit 3 means clients will not trust what is served (leap 3, stratum
	// 16); holdover and the `local` fallback are served as valid time.
	if st.State == report.StateUnsynchronised {
		return exitUnsound
	}
	return exitOK
}

func callSources(c *ctlClient, _ []string, _ any, out io.Writer) int {
	var rows []report.Source
	if code := c.do(gateway.CmdSources, nil, &rows); code != exitOK {
		return code
	}
	return c.emit(out, rows, func() { printSources(out, rows) })
}

func callServerStats(c *ctlClient, _ []string, _ any, out io.Writer) int {
	var st report.ServerStats
	if code := c.do(gateway.CmdServerStats, nil, &st); code != exitOK {
		return code
	}
	return c.emit(out, st, func() { printServerStats(out, &st) })
}

func clientsFlags(fs *flag.FlagSet) func() (any, error) {
	n := fs.Int("n", 20, "show at most `N` prefixes (1.."+strconv.Itoa(gateway.MaxClients)+")")
	return func() (any, error) {
		if *n < 1 || *n > gateway.MaxClients {
			return nil, errors.New("-n must be 1.." + strconv.Itoa(gateway.MaxClients))
		}
		return gateway.ClientsArgs{N: *n}, nil
	}
}

func callClients(c *ctlClient, _ []string, args any, out io.Writer) int {
	var cl report.Clients
	if code := c.do(gateway.CmdClients, args, &cl); code != exitOK {
		return code
	}
	return c.emit(out, cl, func() { printClients(out, &cl) })
}

func keyRingCall(cmd string) func(*ctlClient, []string, any, io.Writer) int {
	return func(c *ctlClient, _ []string, _ any, out io.Writer) int {
		var kr report.KeyRing
		if code := c.do(cmd, nil, &kr); code != exitOK {
			return code
		}
		return c.emit(out, kr, func() { printKeyRing(out, &kr) })
	}
}

func rotateFlags(fs *flag.FlagSet) func() (any, error) {
	fleet := fs.Bool("fleet", false, "publish the rotation to every gateway through the fleet store (ntskeystore)")
	return func() (any, error) { return gateway.RotateArgs{Fleet: *fleet}, nil }
}

func callRotate(c *ctlClient, _ []string, args any, out io.Writer) int {
	var kr report.KeyRing
	if code := c.do(gateway.CmdKeysRotate, args, &kr); code != exitOK {
		return code
	}
	return c.emit(out, kr, func() { printKeyRing(out, &kr) })
}

func callPolicyPublish(c *ctlClient, pos []string, _ any, out io.Writer) int {
	path, err := filepath.Abs(pos[0])
	if err != nil {
		printf(c.stderr, "gatectl policy publish: %v\n", err)
		return exitUsage
	}
	var res gateway.PolicyResult
	if code := c.do(gateway.CmdPolicyPublish, gateway.PolicyArgs{File: path}, &res); code != exitOK {
		return code
	}
	return c.emit(out, res, func() { printf(out, "policy from %s published to the fleet (%s)\n", path, stamp(res.Published)) })
}

func pruneFlags(fs *flag.FlagSet) func() (any, error) {
	keep := fs.Int("keep", 1, "sealing keys to keep, the current one included (`N` >= 1)")
	fleet := fs.Bool("fleet", false, "revoke on every gateway through the fleet store (ntskeystore)")
	return func() (any, error) {
		if *keep < 1 {
			return nil, errors.New("-keep must be at least 1")
		}
		return gateway.PruneArgs{Keep: *keep, Fleet: *fleet}, nil
	}
}

func callPrune(c *ctlClient, _ []string, args any, out io.Writer) int {
	var res gateway.PruneResult
	if code := c.do(gateway.CmdKeysPrune, args, &res); code != exitOK {
		return code
	}
	return c.emit(out, res, func() { printf(out, "dropped %d key(s)\n", res.Dropped) })
}

func callSymList(c *ctlClient, _ []string, _ any, out io.Writer) int {
	var l gateway.SymList
	if code := c.do(gateway.CmdSymList, nil, &l); code != exitOK {
		return code
	}
	return c.emit(out, l, func() { printSymList(out, &l) })
}

func symGenFlags(fs *flag.FlagSet) func() (any, error) {
	id := fs.Uint("id", 0, "key `ID` (default: one more than the highest in the file)")
	typ := fs.String("type", "AES128", "key `type`: AES128 or AES256")
	return func() (any, error) {
		if *id > 1<<32-1 {
			return nil, errors.New("-id must fit in 32 bits")
		}
		return gateway.SymGenArgs{ID: uint32(*id), Type: *typ}, nil
	}
}

func callSymGen(c *ctlClient, _ []string, args any, out io.Writer) int {
	var res gateway.SymGenResult
	err := c.call(gateway.CmdSymGen, args, &res)
	if c.root && errors.Is(err, errNoWrite) {
		a := args.(gateway.SymGenArgs)
		err = c.editKeys(func(path string, data []byte) ([]byte, error) {
			next, k, err := symkey.Generate(path, data, a.ID, a.Type, rand.Reader)
			res = gateway.SymGenResult{ID: k.ID, Type: k.Type, Line: k.Line, File: path}
			return next, err
		})
	}
	if code := c.exit(err); code != exitOK {
		return code
	}
	return c.emit(out, res, func() {
		printf(out, "%s\n", res.Line)
		printf(out, "# added to %s and loaded; put the line above in the client's keys file\n", res.File)
	})
}

func callSymRemove(c *ctlClient, pos []string, _ any, out io.Writer) int {
	id, err := strconv.ParseUint(pos[0], 10, 32)
	if err != nil || id == 0 {
		printf(c.stderr, "gatectl keys sym remove: ID must be 1..4294967295, got %q\n", pos[0])
		return exitUsage
	}
	err = c.call(gateway.CmdSymRemove, gateway.SymRemoveArgs{ID: uint32(id)}, nil)
	if c.root && errors.Is(err, errNoWrite) {
		err = c.editKeys(func(path string, data []byte) ([]byte, error) {
			return symkey.Remove(path, data, uint32(id))
		})
	}
	if code := c.exit(err); code != exitOK {
		return code
	}
	return c.emit(out, map[string]uint64{"removed": id}, func() { printf(out, "key %d removed and the keys file reloaded\n", id) })
}

func certCall(cmd string) func(*ctlClient, []string, any, io.Writer) int {
	return func(c *ctlClient, _ []string, _ any, out io.Writer) int {
		var crt report.Cert
		if code := c.do(cmd, nil, &crt); code != exitOK {
			return code
		}
		return c.emit(out, crt, func() { printCert(out, &crt) })
	}
}

func callReload(c *ctlClient, _ []string, _ any, out io.Writer) int {
	var res gateway.ReloadResult
	if code := c.do(gateway.CmdReload, nil, &res); code != exitOK {
		return code
	}
	return c.emit(out, res, func() {
		printf(out, "configuration reloaded\n")
		for _, w := range res.Warnings {
			printf(out, "warning: %s\n", w)
		}
	})
}

// runningCheck is `gatectl config check` without FILE: the daemon checks
// the file it runs from, as it reads it.
func runningCheck(c *ctlClient, out io.Writer) int {
	var res gateway.CheckResult
	if code := c.do(gateway.CmdConfigCheck, nil, &res); code != exitOK {
		return code
	}
	code := c.emit(out, res, func() {
		for _, w := range res.Warnings {
			printf(out, "warning: %s\n", w)
		}
		for _, p := range res.Problems {
			printf(out, "%s\n", p)
		}
		if len(res.Problems) == 0 {
			printf(out, "%s: OK\n", res.File)
		}
	})
	if code == exitOK && len(res.Problems) > 0 {
		return exitFail
	}
	return code
}

// errNoWrite matches the daemon's answer when it may not write a file.
var errNoWrite = &control.Error{Code: control.CodeNoWrite}

// editKeys is `keys sym gen|remove` done by a root gatectl for a daemon
// that dropped privileges and may no longer write its keys file (under
// systemd it is root's, in /etc/timegate): the same line edit, under the
// same directory lock, keeping the file's owner and mode, then a reload so
// that the daemon serves the new file at once.
func (c *ctlClient) editKeys(edit func(path string, data []byte) ([]byte, error)) error {
	var l gateway.SymList
	if err := c.call(gateway.CmdSymList, nil, &l); err != nil {
		return err
	}
	unlock, err := secfile.LockDir(l.File)
	if err != nil {
		return err
	}
	defer unlock()
	data, err := secfile.ReadPrivate(l.File)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	next, err := edit(l.File, data)
	if err != nil {
		return err
	}
	if err := secfile.Replace(l.File, next, 0o600); err != nil {
		return err
	}
	var res gateway.ReloadResult
	if err := c.call(gateway.CmdReload, nil, &res); err != nil {
		return fmt.Errorf("%s written, but the reload was refused (the previous keys stay in use): %w", l.File, err)
	}
	return nil
}
