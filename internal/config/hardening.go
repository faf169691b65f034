package config

import "strings"

// maxStartOffsetLimit bounds `maxstartoffset`: above ntpd's 1000 s panic
// threshold, which refuses such steps from any number of sources anyway,
// the directive would mean nothing.
const maxStartOffsetLimit = 1000

// maxstartoffset SECONDS — timegate's: before the first synchronisation, a
// step larger than SECONDS from the system clock needs at least two
// agreeing sources; a lone source (a compromised or broken upstream, keyed
// or not) cannot move the served time that far on its own. 0, the default,
// sets no limit (chrony and ntpd follow a lone source at start-up too).
func maxStartOffset(p *parser, name string, args []string) {
	if p.exactly(name, args, 1) {
		if d, ok := p.secondsArg(name, args[0], 0, maxStartOffsetLimit); ok {
			p.cfg.MaxStartOffset = d
		}
	}
}

// keytypes cmac|any — timegate's: `cmac` refuses every key of the keys file
// that is not AES-CMAC (RFC 8573 makes AES-CMAC mandatory and deprecates
// MD5; SHA-1 is no better), so that no request or upstream can be
// authenticated with a legacy digest. `any`, the default, loads every type
// chrony and ntpd know, with a warning for the legacy ones.
func keyTypes(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	switch strings.ToLower(args[0]) {
	case "cmac":
		p.cfg.CMACOnly = true
	case "any":
		p.cfg.CMACOnly = false
	default:
		p.fail(name, "must be cmac or any, got %q", args[0])
	}
}
