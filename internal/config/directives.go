package config

import (
	"strconv"
	"strings"

	"timegate/policy"
)

type handler struct {
	fn func(p *parser, name string, args []string)
	// single directives may appear once; a second one is an error rather
	// than a silent override, so an operator never edits a dead line.
	single bool
}

// lookupDirective is a switch rather than a package-level map so that the
// table cannot be mutated.
func lookupDirective(name string) (handler, bool) {
	switch name {
	case "port":
		return handler{portDirective, true}, true
	case "ntsport":
		return handler{portDirective, true}, true
	case "bindaddress":
		return handler{bindAddress, false}, true
	case "ntpworkers":
		return handler{ntpWorkers, true}, true
	case "ntprcvbuf":
		return handler{ntpRcvBuf, true}, true
	case "ntskenice":
		return handler{ntsKENice, true}, true
	case "txlead":
		return handler{txLead, true}, true
	case "local":
		return handler{local, true}, true
	case "ntsntpserver":
		return handler{ntsNTPServer, true}, true
	case "ntskeystore":
		return handler{keyStore, true}, true
	case "leapsectz", "leapfile", "leapseclist", "leapsecmode":
		return handler{leapDirective, true}, true
	case "smoothtime":
		return handler{smoothTime, true}, true
	case "smoothport":
		return handler{smoothPort, true}, true
	case "smoothallow":
		return handler{smoothAllow, false}, true
	case "keyfile", "ntsservercert", "ntsserverkey", "ntsdumpdir", "pidfile", "driftfile", "dumpdir":
		return handler{pathDirective, true}, true
	case "ntstrustedcerts":
		return handler{trustedCerts, false}, true
	case "ntsrotate":
		return handler{ntsRotate, true}, true
	case "ratelimit", "ntsratelimit":
		return handler{rateLimit, true}, true
	case "clientloglimit":
		return handler{clientLogLimit, true}, true
	case "server", "pool":
		return handler{source, false}, true
	case "minsources":
		return handler{minSources, true}, true
	case "maxdistance":
		return handler{maxDistance, true}, true
	case "makestep":
		return handler{makeStep, true}, true
	case "logdir":
		return handler{logDir, true}, true
	case "log":
		return handler{logDirective, false}, true
	case "authselectmode":
		return handler{authSelectMode, true}, true
	case "holdover":
		return handler{holdover, true}, true
	case "maxchange":
		return handler{maxChange, true}, true
	case "maxstartoffset":
		return handler{maxStartOffset, true}, true
	case "keytypes":
		return handler{keyTypes, true}, true
	case "restrict":
		return handler{restrict, false}, true
	case "clockcontrol":
		return handler{clockControl, true}, true
	case "bindcmdaddress":
		return handler{bindCmdAddress, true}, true
	case "cmdgroup":
		return handler{cmdGroup, true}, true
	case "user":
		return handler{userDirective, true}, true
	case "metrics":
		return handler{metricsDirective, true}, true
	case "auditlog", "auditkey", "auditcheckpoint", "auditepisodes", "auditrotate", "auditship":
		return auditDirective(name)
	}
	// chrony's and ntpd's directives that map onto the ones above, or that
	// timegate implements in its own way (compat.go).
	return compatDirective(name)
}

func portDirective(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	v, ok := p.intArg(name, "port", args[0], 0, 65535)
	if !ok {
		return
	}
	if name == "port" {
		p.cfg.Port = v
	} else {
		p.cfg.NTSPort = v
	}
}

// MaxNTPWorkers bounds `ntpworkers`: each worker holds a socket and about
// 140 kB of batch buffers, so a typo must not open thousands; no machine
// this gateway runs on has more cores than this.
const MaxNTPWorkers = 256

// ntpworkers N: sockets per served address, 0 = one per CPU.
func ntpWorkers(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	if v, ok := p.intArg(name, "worker count", args[0], 0, MaxNTPWorkers); ok {
		p.cfg.NTPWorkers = v
	}
}

// Bounds of `ntprcvbuf`. Below 64 KiB a socket holds fewer requests than
// one batch of a busy worker takes; above 256 MiB (doubled by the kernel,
// per socket, per worker) a typo would let a flood pin gigabytes of kernel
// memory. 0 is allowed: it keeps the kernel's default (rmem_default), for
// operators who size buffers with sysctl.
const (
	MinNTPRcvBuf = 64 << 10
	MaxNTPRcvBuf = 256 << 20
)

// ntprcvbuf BYTES: each NTP socket's receive buffer (SO_RCVBUF).
func ntpRcvBuf(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	v, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || (v != 0 && (v < MinNTPRcvBuf || v > MaxNTPRcvBuf)) {
		p.fail(name, "must be 0 (the kernel's default) or a byte count %d..%d, got %q", MinNTPRcvBuf, MaxNTPRcvBuf, args[0])
		return
	}
	p.cfg.NTPRcvBuf = int(v)
}

// ntskenice idle|N: the NTS-KE helper processes in SCHED_IDLE (the
// default), or at nice N (0..19; with ntsprocesses 0, the sessions on
// threads of their own at nice N and the NTP workers on theirs).
func ntsKENice(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	if args[0] == "idle" {
		p.cfg.NTSKEIdle, p.cfg.NTSKENice = true, 0
		return
	}
	v, err := strconv.Atoi(args[0])
	if err != nil || v < 0 || v > 19 {
		p.fail(name, "must be idle or a nice value 0..19, got %q", args[0])
		return
	}
	p.cfg.NTSKEIdle, p.cfg.NTSKENice = false, v
}

func bindAddress(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	if a, ok := p.addr(name, args[0]); ok {
		p.cfg.BindAddresses = append(p.cfg.BindAddresses, a)
	}
}

// local [stratum N] [orphan] [distance D] — chrony's syntax; the default
// stratum is 10 and the default distance 1 s: the local clock takes over
// when no upstream is usable, or when the held-over root distance exceeds D.
// `orphan` is chrony's orphan mode (internal/engine/orphan.go).
func local(p *parser, name string, args []string) {
	l := &Local{Stratum: 10, Distance: DefaultLocalDistance}
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "stratum", "distance":
			if i+1 >= len(args) {
				p.fail(name, "%s needs a value", args[i])
				return
			}
			i++
			if args[i-1] == "distance" {
				d, ok := p.secondsArg(name, args[i], 0.001, 16)
				if !ok {
					return
				}
				l.Distance = d
				continue
			}
			v, ok := p.intArg(name, "stratum", args[i], 1, 15)
			if !ok {
				return
			}
			l.Stratum = v
		case "orphan":
			l.Orphan = true
		default:
			p.fail(name, "unknown option %q (want stratum N, orphan, distance D)", args[i])
			return
		}
	}
	p.cfg.Local = l
}

func pathDirective(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	v := args[0]
	switch name {
	case "keyfile":
		p.cfg.KeyFile = v
	case "ntsservercert":
		p.cfg.NTSServerCert = v
	case "ntsserverkey":
		p.cfg.NTSServerKey = v
	case "ntsdumpdir":
		p.cfg.NTSDumpDir = v
	case "pidfile":
		p.cfg.PIDFile = v
	case "driftfile":
		p.cfg.DriftFile = v
	case "dumpdir":
		p.cfg.DumpDir = v
	}
}

func trustedCerts(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	p.cfg.NTSTrustedCerts = append(p.cfg.NTSTrustedCerts, args[0])
}

// ntsrotate SECONDS — chrony's directive; 0 disables scheduled rotation.
func ntsRotate(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	if d, ok := p.secondsArg(name, args[0], 0, 365*86400); ok {
		if d != 0 && d.Seconds() < 60 {
			p.fail(name, "must be 0 (off) or at least 60 seconds, got %s", args[0])
			return
		}
		p.cfg.NTSRotate = d
	}
}

// ratelimit [interval I] [burst B] [leak L] [kod] [prefix4 N] [prefix6 N] [off]
func rateLimit(p *parser, name string, args []string) {
	rl := &p.cfg.RateLimit
	if name == "ntsratelimit" {
		rl = &p.cfg.NTSRateLimit
	}
	rl.Enabled = true
	for i := 0; i < len(args); i++ {
		key := args[i]
		switch key {
		case "kod":
			rl.KoD = true
			continue
		case "off":
			rl.Enabled = false
			continue
		}
		if i+1 >= len(args) {
			p.fail(name, "%s needs a value", key)
			return
		}
		i++
		var ok bool
		switch key {
		case "interval":
			// chrony: -19..12 (2^-19 s .. 4096 s between requests).
			rl.Interval, ok = p.intArg(name+" interval", "value", args[i], -19, 12)
		case "burst":
			rl.Burst, ok = p.intArg(name+" burst", "value", args[i], 1, 255)
		case "leak":
			rl.Leak, ok = p.intArg(name+" leak", "value", args[i], 1, 4)
		case "prefix4":
			rl.Prefix4, ok = p.intArg(name+" prefix4", "value", args[i], 16, 32)
		case "prefix6":
			rl.Prefix6, ok = p.intArg(name+" prefix6", "value", args[i], 32, 128)
		default:
			p.fail(name, "unknown option %q", key)
			return
		}
		if !ok {
			return
		}
	}
}

func clientLogLimit(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	v, err := strconv.ParseInt(args[0], 10, 64)
	// Bounded so that a typo cannot reserve gigabytes at start-up.
	if err != nil || v < 4096 || v > 1<<30 {
		p.fail(name, "must be a byte count 4096..1073741824, got %q", args[0])
		return
	}
	p.cfg.ClientLogLimit = v
}

func minSources(p *parser, name string, args []string) {
	if p.exactly(name, args, 1) {
		if v, ok := p.intArg(name, "value", args[0], 1, maxSources); ok {
			p.cfg.MinSources = v
		}
	}
}

func maxDistance(p *parser, name string, args []string) {
	if p.exactly(name, args, 1) {
		if d, ok := p.secondsArg(name, args[0], 0.001, 100); ok {
			p.cfg.MaxDistance = d
		}
	}
}

func holdover(p *parser, name string, args []string) {
	if p.exactly(name, args, 1) {
		if d, ok := p.secondsArg(name, args[0], 0, 30*86400); ok {
			p.cfg.Holdover = d
		}
	}
}

// authselectmode require|prefer|mix|ignore — chrony's modes; timegate
// defaults to require: an unauthenticated upstream is never selected.
func authSelectMode(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	switch m := strings.ToLower(args[0]); m {
	case "require", "prefer", "mix", "ignore":
		p.cfg.AuthSelectMode = m
	default:
		p.fail(name, "must be require, prefer, mix or ignore, got %q", args[0])
	}
}

func restrict(p *parser, name string, args []string) {
	if len(args) == 0 {
		p.fail(name, "needs an address or default")
		return
	}
	if strings.EqualFold(args[0], "source") {
		// ntpd: the rights of the servers it polls. timegate's upstream
		// exchanges do not pass the access policy, and a server asking
		// timegate for time is served by the other rules like any client.
		p.warn(name, "source: no effect: upstream exchanges are not subject to restrict rules")
		return
	}
	if len(p.cfg.Restrict) >= maxRestricts {
		p.fail(name, "more than %d restrict lines", maxRestricts)
		return
	}
	rule, err := policy.ParseRestrict(args)
	if err != nil {
		if host := restrictHost(args); host != "" {
			restrictHostname(p, name, host, args)
			return
		}
		p.fail(name, "%v", err)
		return
	}
	p.cfg.Restrict = append(p.cfg.Restrict, Restrict{Pos: p.pos, Args: append([]string(nil), args...), Rule: rule})
}

// clockcontrol on|off — timegate's own: off (the default) never touches the
// system clock; on disciplines it through adjtimex (needs CAP_SYS_TIME).
func clockControl(p *parser, name string, args []string) {
	if v, ok := p.onOff(name, args); ok {
		p.cfg.ClockControl = v
	}
}

// txlead on|off — timegate's own: on (the default) moves basic replies'
// transmit timestamps by the learned send time (udpserve's txlead.go);
// off serves the clock read before the send, as chronyd does.
func txLead(p *parser, name string, args []string) {
	if v, ok := p.onOff(name, args); ok {
		p.cfg.TxLead = v
	}
}

// onOff parses the single on|off argument of a switch directive.
func (p *parser) onOff(name string, args []string) (v, ok bool) {
	if !p.exactly(name, args, 1) {
		return false, false
	}
	switch strings.ToLower(args[0]) {
	case "on":
		return true, true
	case "off":
		return false, true
	}
	p.fail(name, "must be on or off, got %q", args[0])
	return false, false
}

// bindcmdaddress PATH: the control socket (chrony's directive). As in chrony,
// "/" turns the socket off. Only a Unix socket path is accepted: timegate has
// no network control port.
func bindCmdAddress(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	v := args[0]
	switch {
	case v == "/":
		p.cfg.ControlSocket, p.cfg.ControlOff = "", true
	case !strings.HasPrefix(v, "/"):
		p.fail(name, "must be an absolute path of a Unix socket (timegate has no network control port), got %q", v)
	case len(v) > maxSocketPath:
		p.fail(name, "path longer than %d bytes cannot be a Unix socket: %q", maxSocketPath, v)
	default:
		p.cfg.ControlSocket = v
	}
}

// maxSocketPath is what fits in sockaddr_un.sun_path with its terminating NUL.
const maxSocketPath = 107

// cmdgroup GROUP: besides root and the daemon's own user, members of GROUP may
// use the control socket (its file group).
func cmdGroup(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	p.cfg.ControlGroup = args[0]
}

// user NAME: the user timegate runs as once its sockets are bound (chrony's
// directive). Checked against the user database at start, not here, so that
// a configuration can be checked on another machine.
func userDirective(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	p.cfg.User = args[0]
}
