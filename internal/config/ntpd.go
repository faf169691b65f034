package config

import (
	"net/netip"
	"strings"
)

// ntpd's and NTPsec's directives, mapped onto timegate's.

// ntpdLocal is ntpd's undisciplined local clock driver: `server 127.127.1.N`,
// with `fudge 127.127.1.N stratum S`. It becomes `local stratum S`.
type ntpdLocal struct {
	pos     Position
	stratum int
}

// ntpdLocalStratum is the stratum of ntpd's local clock driver without a
// fudge line (refclock_local.c's default).
const ntpdLocalStratum = 5

// refclockAddr reports whether host is an ntpd reference clock pseudo
// address 127.127.T.U, and returns the driver type T.
func refclockAddr(host string) (int, bool) {
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return 0, false
	}
	b := a.As4()
	if b[0] != 127 || b[1] != 127 {
		return 0, false
	}
	return int(b[2]), true
}

// refclockSource handles `server 127.127.T.U ...`: never a network server.
func refclockSource(p *parser, name string, args []string, driver int) {
	if driver != 1 {
		p.warn(name, "%s is ntpd reference clock driver %d: reference clocks are not supported, this line adds no source", args[0], driver)
		return
	}
	if p.ntpdLocal != nil {
		p.fail(name, "second local clock line (first at line %d)", p.ntpdLocal.pos.Line)
		return
	}
	p.ntpdLocal = &ntpdLocal{pos: p.pos, stratum: ntpdLocalStratum}
	if len(args) > 1 {
		p.warn(name, "options of ntpd's local clock line (%s) have no effect: the local clock is served as `local stratum N`", strings.Join(args[1:], " "))
	}
}

// fudge ADDR [stratum N] [refid ID] [time1 S] [time2 S] [flag1..4 0|1]
func fudge(p *parser, name string, args []string) {
	if len(args) == 0 {
		p.fail(name, "needs a reference clock address")
		return
	}
	driver, ok := refclockAddr(args[0])
	if !ok {
		p.fail(name, "%q is not a reference clock address 127.127.T.U", args[0])
		return
	}
	if driver != 1 {
		p.warn(name, "reference clock driver %d is not supported: this line has no effect", driver)
		return
	}
	var ignored []string
	for i := 1; i < len(args); i += 2 {
		if i+1 >= len(args) {
			p.fail(name, "%s needs a value", args[i])
			return
		}
		if strings.EqualFold(args[i], "stratum") {
			v, ok := p.intArg(name+" stratum", "stratum", args[i+1], 1, 15)
			if !ok {
				return
			}
			p.fudgeStratum = v
			continue
		}
		ignored = append(ignored, args[i]+" "+args[i+1])
	}
	if len(ignored) > 0 {
		p.warn(name, "only stratum applies to the local clock; no effect: %s", strings.Join(ignored, ", "))
	}
}

// tos [minsane N] [maxdist S] [minclock N] ... — ntpd's selection options:
// minsane is minsources, maxdist is maxdistance; ntpd's orphan mode is
// refused (write chrony's `local stratum N orphan`); the others have no
// counterpart.
func tos(p *parser, name string, args []string) {
	if len(args) == 0 || len(args)%2 != 0 {
		p.fail(name, "takes OPTION VALUE pairs")
		return
	}
	var ignored []string
	for i := 0; i < len(args); i += 2 {
		opt, val := strings.ToLower(args[i]), args[i+1]
		switch opt {
		case "minsane":
			if p.claim(name+" minsane", "minsources") {
				if v, ok := p.intArg(name+" minsane", "value", val, 1, maxSources); ok {
					p.cfg.MinSources = v
				}
			}
		case "maxdist":
			if p.claim(name+" maxdist", "maxdistance") {
				if d, ok := p.secondsArg(name+" maxdist", val, 0.001, 100); ok {
					p.cfg.MaxDistance = d
				}
			}
		case "orphan":
			p.fail(name, "ntpd's orphan mode is not mapped: write `local stratum %s orphan` (chrony's orphan mode) instead of `tos orphan %s`", val, val)
		case "minclock", "maxclock", "floor", "ceiling", "cohort", "mindist", "beacon",
			"orphanwait", "bcpollbstep", "maxdisp":
			ignored = append(ignored, opt+" "+val)
		default:
			p.fail(name, "unknown option %q", args[i])
		}
	}
	if len(ignored) > 0 {
		p.warn(name, "%s: %s", strings.Join(ignored, ", "), whySelection)
	}
}

// claim marks a single-valued setting as set by this line, failing when
// another directive (or this one) already set it: `tos minsane` and
// `minsources` are one setting.
func (p *parser) claim(directive, setting string) bool {
	if prev, dup := p.seen[setting]; dup {
		p.fail(directive, "%s already set at %s", setting, prev)
		return false
	}
	if p.seen == nil {
		p.seen = map[string]Position{}
	}
	p.seen[setting] = p.pos
	p.cfg.Positions[setting] = p.pos
	return true
}

// keys FILE — ntpd's name for keyfile.
func keysDirective(p *parser, name string, args []string) {
	if p.exactly(name, args, 1) && p.claim(name, "keyfile") {
		p.cfg.KeyFile = args[0]
	}
}

// trustedkey ID... [(FIRST ... LAST)] — ntpd: only these keys of the keys
// file authenticate; timegate applies that to its clients and its sources.
func trustedKey(p *parser, name string, args []string) {
	words := strings.Fields(strings.NewReplacer("(", " ( ", ")", " ) ").Replace(strings.Join(args, " ")))
	if len(words) == 0 {
		p.fail(name, "needs at least one key ID")
		return
	}
	ids := p.cfg.TrustedKeys
	if ids == nil {
		ids = []uint32{}
	}
	for i := 0; i < len(words); i++ {
		if words[i] != "(" {
			id, ok := p.keyIDArg(name, words[i])
			if !ok {
				return
			}
			ids = append(ids, uint32(id))
			continue
		}
		if i+4 >= len(words) || words[i+2] != "..." || words[i+4] != ")" {
			p.fail(name, "a range is written (FIRST ... LAST)")
			return
		}
		lo, ok1 := p.keyIDArg(name, words[i+1])
		hi, ok2 := p.keyIDArg(name, words[i+3])
		// Bounded: a range is a shorthand for a few keys, not a way to make
		// the daemon allocate gigabytes.
		if !ok1 || !ok2 || hi < lo || hi-lo > maxTrustedKeys || int64(len(ids))+hi-lo > maxTrustedKeys {
			p.fail(name, "range must be FIRST <= LAST within %d keys", maxTrustedKeys)
			return
		}
		for id := lo; id <= hi; id++ {
			ids = append(ids, uint32(id))
		}
		i += 4
	}
	p.cfg.TrustedKeys = ids
}

// maxTrustedKeys bounds trustedkey: ntpd's keys are 1..65535.
const maxTrustedKeys = 65536

// interface|nic listen|ignore|drop ADDR|all|wildcard|... — ntpd. `listen
// ADDR` is bindaddress; `listen all`/`wildcard` is timegate's default;
// `ignore`/`drop wildcard` is what bindaddress lines do anyway. Excluding an
// address or interface is not possible here, and is refused rather than
// ignored: serving where the operator said not to would widen exposure.
func iface(p *parser, name string, args []string) {
	if !p.exactly(name, args, 2) {
		return
	}
	action, target := strings.ToLower(args[0]), args[1]
	lt := strings.ToLower(target)
	switch {
	case action == "listen" && (lt == "all" || lt == "wildcard"):
		return
	case action == "listen":
		if a, err := netip.ParseAddr(target); err == nil && a.Zone() == "" {
			p.cfg.BindAddresses = append(p.cfg.BindAddresses, a)
			return
		}
		p.fail(name, "listen %s: only an address can be served here: write `bindaddress ADDR` for each address", target)
	case (action == "ignore" || action == "drop") && lt == "wildcard":
		p.ignoreWildcard = true
	case action == "ignore" || action == "drop":
		p.fail(name, "%s %s: timegate cannot exclude addresses: list the ones to serve with `bindaddress ADDR`", action, target)
	default:
		p.fail(name, "want listen, ignore or drop, got %q", args[0])
	}
}

// ntpsecNTS is NTPsec's `nts` directive: enable, disable, key, cert, ca.
func ntpsecNTS(p *parser, name string, args []string) {
	if len(args) == 0 {
		p.fail(name, "needs a subcommand (enable, disable, key FILE, cert FILE, ca FILE)")
		return
	}
	sub := strings.ToLower(args[0])
	switch {
	case sub == "enable" && len(args) == 1:
		// NTS-KE is served by default.
	case sub == "disable" && len(args) == 1:
		if p.claim(name+" disable", "ntsport") {
			p.cfg.NTSPort = 0
		}
	case sub == "key" && len(args) == 2:
		if p.claim(name+" key", "ntsserverkey") {
			p.cfg.NTSServerKey = args[1]
		}
	case sub == "cert" && len(args) == 2:
		if p.claim(name+" cert", "ntsservercert") {
			p.cfg.NTSServerCert = args[1]
		}
	case sub == "ca" && len(args) == 2:
		p.cfg.NTSTrustedCerts = append(p.cfg.NTSTrustedCerts, args[1])
	case sub == "cookie" || sub == "aead" || sub == "mintls" || sub == "maxtls" ||
		sub == "tlsciphers" || sub == "tlsciphersuites" || sub == "tlsecdhcurves":
		p.warn(name, "%s: no effect: TLS 1.3 only with Go's cipher suites, AES-SIV-CMAC-256 cookies sealed with timegate's own key ring (ntsdumpdir)", sub)
	default:
		p.fail(name, "unknown or malformed subcommand %q", strings.Join(args, " "))
	}
}

// ntscachedir DIR — chrony's former name of ntsdumpdir.
func ntsCacheDir(p *parser, name string, args []string) {
	if p.exactly(name, args, 1) && p.claim(name, "ntsdumpdir") {
		p.cfg.NTSDumpDir = args[0]
	}
}

// nosystemcert — chrony: trust only ntstrustedcerts for NTS-KE, not the
// system's CA roots.
func noSystemCert(p *parser, name string, args []string) {
	if p.exactly(name, args, 0) {
		p.cfg.NoSystemCert = true
	}
}

// finishCompat resolves what needs the whole file: ntpd's local clock and
// its fudge, chrony's allow/deny, `interface ignore wildcard` alone.
func (p *parser) finishCompat() {
	if l := p.ntpdLocal; l != nil {
		stratum := l.stratum
		if p.fudgeStratum != 0 {
			stratum = p.fudgeStratum
		}
		if p.cfg.Local != nil {
			p.addErr(errorAt(l.pos, "server", "ntpd's local clock 127.127.1.0 and `local` both set the local clock: keep one"))
		} else {
			p.cfg.Local = &Local{Stratum: stratum}
		}
	} else if p.fudgeStratum != 0 {
		p.addWarning(Warning{Pos: Position{p.name, 0}, Directive: "fudge",
			Msg: "stratum for the local clock without `server 127.127.1.0`: no effect"})
	}
	if p.ignoreWildcard && len(p.cfg.BindAddresses) == 0 {
		p.addWarning(Warning{Pos: Position{p.name, 0}, Directive: "interface",
			Msg: "ignore wildcard without listen ADDR lines: timegate still binds the wildcard address"})
	}
	p.finishAccess()
}

// ntsaeads ID... — chrony 4.4+: the AEAD ids for NTS, most preferred first.
// timegate implements 30 (AES-128-GCM-SIV) and 15 (AES-SIV-CMAC-256); an id
// it cannot serve is an error rather than silently skipped.
func ntsAEADs(p *parser, name string, args []string) {
	if len(args) == 0 || len(args) > 2 {
		p.fail(name, "takes one or two AEAD ids (30, 15)")
		return
	}
	ids := make([]uint16, 0, len(args))
	for _, a := range args {
		v, ok := p.intArg(name, "AEAD id", a, 0, 65535)
		if !ok {
			return
		}
		if v != 15 && v != 30 {
			p.fail(name, "AEAD %d is not supported: timegate has 30 (AES-128-GCM-SIV) and 15 (AES-SIV-CMAC-256)", v)
			return
		}
		if len(ids) == 1 && ids[0] == uint16(v) {
			p.fail(name, "AEAD %d listed twice", v)
			return
		}
		ids = append(ids, uint16(v))
	}
	p.cfg.NTSAEADs = ids
}
