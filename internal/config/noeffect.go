package config

// Directives of chrony 4.x and ntpd/NTPsec that timegate accepts with one
// start-up warning, because they have no effect here; the text says why.
// Everything else a real chrony.conf or ntp.conf holds is implemented or
// mapped (directives.go, compat.go), and a word in neither list stays an
// error, so a typo is never taken for an obscure directive.

const (
	whyRTC        = "timegate never touches the real-time clock"
	whyDiscipline = "timegate's clock discipline has fixed rules (steps only before the first " +
		"synchronisation, slews at most 500 ppm, see clockcontrol); this tuning does not apply"
	whyLogs      = "timegate logs to stderr (the journal) and keeps counters; it writes no log or statistics files"
	whyCommand   = "timegate has no network command or monitoring port: gatectl uses the local control socket, checked with SO_PEERCRED"
	whySelection = "source selection uses RFC 5905's fixed parameters (minsources and maxdistance are the tunable ones)"
	whyLeap      = "ntpd's leap smear is not implemented: use smoothtime … leaponly with smoothport and smoothallow"
	whyAutokey   = "Autokey is not supported (broken, RFC 8915 replaces it): use NTS or symmetric keys"
	whyCast      = "broadcast, multicast and manycast modes are not supported"
	whyHardware  = "timegate binds by address (bindaddress) and uses kernel software timestamps"
	whyNone      = "ntpd feature with no counterpart in timegate"
)

// noEffect returns why a known chrony or ntpd directive has no effect, and
// whether name is one.
func noEffect(name string) (string, bool) {
	switch name {
	// chrony: real-time clock.
	case "rtcsync", "rtcfile", "rtcdevice", "rtconutc", "rtcautotrim", "hwclockfile":
		return whyRTC, true
	// chrony and ntpd: discipline tuning.
	case "maxslewrate", "maxdrift", "corrtimeratio", "fallbackdrift",
		"maxupdateskew", "clockprecision", "initstepslew", "tempcomp",
		"manual", "tinker", "tick":
		return whyDiscipline, true
	case "logbanner", "logchange", "mailonchange", "statistics", "statsdir",
		"filegen", "logfile", "logconfig":
		return whyLogs, true
	case "dumponexit":
		return "with dumpdir set, source state is always dumped at a clean stop", true
	case "cmdport", "cmdallow", "cmddeny", "cmdratelimit", "opencommands", "bindcmddevice",
		"controlkey", "requestkey", "trap":
		return whyCommand, true
	case "noclientlog":
		return "clients are always recorded in the fixed-size rate-limit table, which ratelimit needs", true
	case "hwtimestamp", "hwtstimeout", "maxtxbuffers", "binddevice", "bindacqdevice",
		"bindacqaddress", "acquisitionport":
		return whyHardware, true
	case "dscp", "qos":
		return "packets are sent with the default DSCP", true
	case "ptpport", "ptpdomain":
		return "NTP over PTP is not supported", true
	case "refclock":
		return "reference clocks are not supported: this line adds no source", true
	case "lock_all", "sched_priority", "rlimit":
		return "timegate does not lock memory or change its scheduling priority or limits", true
	case "ntpsigndsocket":
		return "MS-SNTP signing is a domain controller's job (Samba's ntp_signd), not the gateway's", true
	case "ntsrefresh":
		return "NTS-KE runs again when the cookies run out or a server refuses one", true
	case "refresh":
		return "source names are resolved again only when they fail to resolve", true
	case "nocerttimecheck":
		return "certificate validity times are always checked", true
	case "combinelimit", "maxjitter", "maxstratum", "minstratum", "reselectdist",
		"stratumweight", "maxsamples", "minsamples", "maxclockerror":
		return whySelection, true
	case "leapsmearinterval":
		return whyLeap, true
	case "keysdir", "crypto", "revoke", "automax":
		return whyAutokey, true
	case "broadcast", "broadcastclient", "broadcastdelay", "manycastclient", "manycastserver",
		"multicastclient":
		return whyCast, true
	case "peer":
		return "symmetric associations are not supported: this host is not polled " +
			"(write `server HOST` to use it as a source)", true
	case "enable", "disable":
		return "ntpd's system flags (auth, bclient, calibrate, kernel, monitor, ntp, stats) " +
			"have no counterpart: there is no monitor list or kernel discipline, and " +
			"authentication of sources follows authselectmode", true
	case "mru":
		return "the rate-limit table's size is set with clientloglimit", true
	case "discard":
		return "ntpd's rate limit is set with ratelimit interval/burst/leak here", true
	case "saveconfigdir", "setvar", "phone", "reset", "unconfig", "unpeer", "calldelay", "ttl":
		return whyNone, true
	case "commandkey", "generatecommandkey", "linux_freq_scale", "linux_hz":
		return "no longer supported by chrony either", true
	}
	return "", false
}

// isSourceDirective reports whether a line may appear in a sourcedir file.
func isSourceDirective(name string) bool {
	switch name {
	case "server", "pool", "peer", "refclock":
		return true
	}
	return false
}
