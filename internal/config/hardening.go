package config

import (
	"strconv"
	"strings"
)

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

// maxchange OFFSET START IGNORE — chrony's: an estimate further than OFFSET
// seconds from the served time is refused (ntpd's panic threshold, 1000 s by
// default). timegate applies it from the first estimate, so START must be 0,
// and never exits over it (IGNORE, where chrony would give up), so a
// non-negative IGNORE is accepted with a warning.
func maxChange(p *parser, name string, args []string) {
	if !p.exactly(name, args, 3) {
		return
	}
	d, ok := p.secondsArg(name, args[0], 0.001, 1e9)
	if !ok {
		return
	}
	if args[1] != "0" {
		p.fail(name, "START must be 0: timegate applies the limit from the first estimate, got %q", args[1])
		return
	}
	ign, err := strconv.Atoi(args[2])
	if err != nil {
		p.fail(name, "IGNORE must be an integer, got %q", args[2])
		return
	}
	if ign >= 0 {
		p.warn(name, "timegate never exits over a refused estimate: it refuses every one beyond OFFSET and says so (as IGNORE -1)")
	}
	p.cfg.MaxChange = d
}
