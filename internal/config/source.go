package config

// server HOST [nts] [key ID] [iburst] [prefer] [minpoll N] [maxpoll N]
//
//	[port P] [ntsport P] — chrony's syntax, the options timegate uses; other
//	chrony options (burst, noselect, ...) are errors, not silently ignored.
func source(p *parser, name string, args []string) {
	if len(args) == 0 {
		p.fail(name, "needs a host name or address")
		return
	}
	if len(p.cfg.Sources) >= maxSources {
		p.fail(name, "more than %d sources", maxSources)
		return
	}
	s := Source{Pos: p.pos, Host: args[0], Pool: name == "pool", MinPoll: 6, MaxPoll: 10, Port: 123, NTSPort: DefaultNTSPort}
	for i := 1; i < len(args); i++ {
		opt := args[i]
		switch opt {
		case "nts":
			s.NTS = true
			continue
		case "iburst":
			s.IBurst = true
			continue
		case "prefer":
			s.Prefer = true
			continue
		}
		if i+1 >= len(args) {
			p.fail(name, "%s: option %q needs a value or is unknown", s.Host, opt)
			return
		}
		i++
		var ok bool
		switch opt {
		case "key":
			var id int
			// chrony key IDs are 32-bit and 0 means "no key".
			id, ok = p.intArg(name+" key", "key ID", args[i], 1, 1<<32-1)
			s.KeyID = uint32(id)
		case "minpoll":
			s.MinPoll, ok = p.intArg(name+" minpoll", "value", args[i], -7, 24)
		case "maxpoll":
			s.MaxPoll, ok = p.intArg(name+" maxpoll", "value", args[i], -7, 24)
		case "port":
			s.Port, ok = p.intArg(name+" port", "port", args[i], 1, 65535)
		case "ntsport":
			s.NTSPort, ok = p.intArg(name+" ntsport", "port", args[i], 1, 65535)
		default:
			p.fail(name, "%s: unknown option %q", s.Host, opt)
			return
		}
		if !ok {
			return
		}
	}
	if s.MinPoll > s.MaxPoll {
		p.fail(name, "%s: minpoll %d above maxpoll %d", s.Host, s.MinPoll, s.MaxPoll)
		return
	}
	if s.NTS && s.KeyID != 0 {
		p.fail(name, "%s: nts and key are exclusive", s.Host)
		return
	}
	p.cfg.Sources = append(p.cfg.Sources, s)
}
