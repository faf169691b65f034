package config

import "strings"

// server|pool HOST [nts] [key ID] [iburst] [prefer] [minpoll N] [maxpoll N]
//
//	[port P] [ntsport P] [maxdelay S] [version N] [maxsources N] [noselect]
//
// chrony's syntax (ntpd's is a subset). Every other option of chrony's or
// ntpd's manual is accepted with a warning saying it has no effect here
// (sourceFlagNoEffect, sourceOptNoEffect); an unknown word is an error.
// ntpd's reference clock addresses 127.127.T.U are never network servers.
func source(p *parser, name string, args []string) {
	if len(args) == 0 {
		p.fail(name, "needs a host name or address")
		return
	}
	if driver, ok := refclockAddr(args[0]); ok && name == "server" {
		refclockSource(p, name, args, driver)
		return
	}
	if len(p.cfg.Sources) >= maxSources {
		p.fail(name, "more than %d sources", maxSources)
		return
	}
	s := Source{Pos: p.pos, Host: args[0], Pool: name == "pool", MinPoll: 6, MaxPoll: 10, Port: 123, NTSPort: DefaultNTSPort}
	noSelect := false
	var ignored []string
	for i := 1; i < len(args); i++ {
		opt := strings.ToLower(args[i])
		if opt == "noselect" {
			noSelect = true
			continue
		}
		if sourceFlag(&s, opt) {
			continue
		}
		if why := sourceFlagNoEffect(opt); why != "" {
			ignored = append(ignored, opt+" ("+why+")")
			continue
		}
		if i+1 >= len(args) {
			p.fail(name, "%s: option %q needs a value or is unknown", s.Host, opt)
			return
		}
		i++
		if why := sourceOptNoEffect(opt); why != "" {
			ignored = append(ignored, opt+" "+args[i]+" ("+why+")")
			continue
		}
		if !p.sourceOption(name, &s, opt, args[i]) {
			return
		}
	}
	if !p.checkSource(name, &s) {
		return
	}
	if len(ignored) > 0 {
		p.warn(name, "%s: no effect: %s", s.Host, strings.Join(ignored, "; "))
	}
	if noSelect {
		// chrony polls a noselect source for monitoring only; timegate has
		// nothing to show such a source in, so it does not poll it at all.
		p.warn(name, "%s: noselect: never selected, so timegate does not poll it", s.Host)
		return
	}
	p.cfg.Sources = append(p.cfg.Sources, s)
}

// sourceFlag sets the option without a value that timegate implements, and
// reports whether opt is one.
func sourceFlag(s *Source, opt string) bool {
	switch opt {
	case "nts":
		s.NTS = true
	case "iburst":
		s.IBurst = true
	case "prefer":
		s.Prefer = true
	case "trust":
		s.Trust = true
	case "require":
		s.Require = true
	case "xleave":
		s.XLeave = true
	default:
		return false
	}
	return true
}

// sourceOption parses one OPTION VALUE pair that timegate implements.
func (p *parser) sourceOption(name string, s *Source, opt, val string) bool {
	var ok bool
	switch opt {
	case "key":
		var id int64
		id, ok = p.keyIDArg(name+" key", val)
		s.KeyID = uint32(id)
	case "minpoll":
		s.MinPoll, ok = p.intArg(name+" minpoll", "value", val, -7, 24)
	case "maxpoll":
		s.MaxPoll, ok = p.intArg(name+" maxpoll", "value", val, -7, 24)
	case "port":
		s.Port, ok = p.intArg(name+" port", "port", val, 1, 65535)
	case "ntsport":
		s.NTSPort, ok = p.intArg(name+" ntsport", "port", val, 1, 65535)
	case "maxdelay":
		s.MaxDelay, ok = p.secondsArg(name+" maxdelay", val, 0.000001, 1000)
	case "version":
		s.Version, ok = p.intArg(name+" version", "value", val, 1, 4)
	case "maxsources":
		s.MaxSources, ok = p.intArg(name+" maxsources", "value", val, 1, 16)
	default:
		p.fail(name, "%s: unknown option %q", s.Host, opt)
	}
	return ok
}

func (p *parser) checkSource(name string, s *Source) bool {
	switch {
	case s.MinPoll > s.MaxPoll:
		p.fail(name, "%s: minpoll %d above maxpoll %d", s.Host, s.MinPoll, s.MaxPoll)
	case s.NTS && s.KeyID != 0:
		p.fail(name, "%s: nts and key are exclusive", s.Host)
	case s.NTS && s.Version != 0 && s.Version != 4:
		p.fail(name, "%s: NTS is defined for NTPv4 only (RFC 8915), not version %d", s.Host, s.Version)
	case s.MaxSources != 0 && !s.Pool:
		p.fail(name, "%s: maxsources applies to pool lines only", s.Host)
	default:
		return true
	}
	return false
}

// sourceFlagNoEffect says why a chrony or ntpd server option without a value
// has no effect, or "" when it is not one.
func sourceFlagNoEffect(opt string) string {
	switch opt {
	case "burst":
		return "one request per poll"
	case "true":
		return "ntpd's always-truechimer flag: every source goes through the same selection (chrony's trust is implemented)"
	case "offline", "auto_offline":
		return "sources are always online"
	case "copy":
		return "the reference ID is the source's address"
	case "preempt", "noval", "dynamic":
		return "associations are fixed at start-up"
	case "autokey":
		return whyAutokey
	}
	return ""
}

// sourceOptNoEffect is sourceFlagNoEffect for options with a value.
func sourceOptNoEffect(opt string) string {
	switch opt {
	case "polltarget", "presend", "minstratum", "maxdelayratio", "maxdelaydevratio",
		"maxdelayquant", "mindelay", "asymmetry", "offset", "minsamples", "maxsamples",
		"filter", "extfield", "bias":
		return "fixed in timegate's filter and selection"
	case "certset":
		return "NTS-KE trusts the system roots and ntstrustedcerts"
	case "mode", "ttl":
		return "ntpd reference clock and manycast option"
	case "ask", "expire", "aead":
		return "NTPsec NTS client option; NTS-KE goes to HOST:ntsport with AES-SIV-CMAC-256"
	}
	return ""
}
