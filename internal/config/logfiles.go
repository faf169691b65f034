package config

// LogFiles are chrony's `log` files timegate writes into LogDir, in chrony's
// column format (measurements.log, statistics.log, tracking.log).
type LogFiles struct {
	Measurements bool // one line per accepted sample of a source
	Statistics   bool // one line per clock-filter update of a source
	Tracking     bool // one line per update of the soft clock
}

// Any reports whether some log file is wanted.
func (l LogFiles) Any() bool { return l.Measurements || l.Statistics || l.Tracking }

// logdir DIR — chrony: where the `log` files go.
func logDir(p *parser, name string, args []string) {
	if p.exactly(name, args, 1) {
		p.cfg.LogDir = args[0]
	}
}

// log measurements|statistics|tracking|rawmeasurements|selection|refclocks|rtc|tempcomp...
// — chrony's log files. The first three are written; rawmeasurements is
// written as measurements (timegate keeps no invalid packets to log); the
// others have no counterpart and warn.
func logDirective(p *parser, name string, args []string) {
	if len(args) == 0 {
		p.fail(name, "names at least one log (measurements, statistics, tracking)")
		return
	}
	for _, a := range args {
		switch a {
		case "measurements":
			p.cfg.Log.Measurements = true
		case "rawmeasurements":
			p.cfg.Log.Measurements = true
			p.warn(name, "rawmeasurements: written as measurements: only valid, authentic samples are logged")
		case "statistics":
			p.cfg.Log.Statistics = true
		case "tracking":
			p.cfg.Log.Tracking = true
		case "selection":
			p.warn(name, "selection: not written: `gatectl sources` shows each source's state, and selection changes go to the journal and the audit trail")
		case "refclocks", "rtc", "tempcomp":
			p.warn(name, "%s: not written: timegate has no reference clocks, real-time clock or temperature compensation", a)
		default:
			p.fail(name, "unknown log %q (measurements, statistics, tracking)", a)
		}
	}
}
