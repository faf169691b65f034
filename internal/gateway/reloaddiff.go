package gateway

import (
	"fmt"
	"reflect"

	"timegate/internal/config"
)

// restartOnly lists what a reload reads but cannot apply to a running
// gateway: sockets, the key ring's place, the upstream engine's settings.
// A reload that changes one of them says so, naming the directive and its
// line, instead of changing nothing silently.
func restartOnly() []restartOnlyDirective {
	return []restartOnlyDirective{
		{"port", func(c *config.Config) any { return c.Port }},
		{"ntsport", func(c *config.Config) any { return c.NTSPort }},
		{"bindaddress", func(c *config.Config) any { return c.BindAddresses }},
		{"ntpworkers", func(c *config.Config) any { return c.NTPWorkers }},
		{"ntprcvbuf", func(c *config.Config) any { return c.NTPRcvBuf }},
		{"txlead", func(c *config.Config) any { return c.TxLead }},
		{"ntskenice", func(c *config.Config) any { return [2]any{c.NTSKENice, c.NTSKEIdle} }},
		{"ntsprocesses", func(c *config.Config) any { return c.NTSProcesses }},
		{"maxntsconnections", func(c *config.Config) any { return c.MaxNTSConnections }},
		// Both the NTS-KE server's choice and what the NTS sources offer
		// are fixed when they start.
		{"ntsaeads", func(c *config.Config) any { return c.NTSAEADs }},
		{"bindcmdaddress", func(c *config.Config) any { return [2]any{c.ControlSocket, c.ControlOff} }},
		{"cmdgroup", func(c *config.Config) any { return c.ControlGroup }},
		{"metrics", func(c *config.Config) any { return c.Metrics }},
		{"ntsdumpdir", func(c *config.Config) any { return c.NTSDumpDir }},
		{"ntsrotate", func(c *config.Config) any { return c.NTSRotate }},
		{"ntsntpserver", func(c *config.Config) any { return [2]any{c.NTSNTPServer, c.NTSNTPPort} }},
		{"ntskeystore", func(c *config.Config) any { return c.NTSKeyStore }},
		{"ntsservercert", func(c *config.Config) any { return [2]string{c.NTSServerCert, c.NTSServerKey} }},
		{"ntstrustedcerts", func(c *config.Config) any { return c.NTSTrustedCerts }},
		{"nosystemcert", func(c *config.Config) any { return c.NoSystemCert }},
		{"holdover", func(c *config.Config) any { return c.Holdover }},
		{"maxstartoffset", func(c *config.Config) any { return c.MaxStartOffset }},
		{"maxchange", func(c *config.Config) any { return c.MaxChange }},
		{"local", func(c *config.Config) any { return c.Local }},
		{"leapsecmode", func(c *config.Config) any { return c.Leap.Mode }},
		{"smoothtime", func(c *config.Config) any { return c.Leap.Smooth }},
		{"smoothport", func(c *config.Config) any { return c.Leap.SmoothPort }},
		{"clockcontrol", func(c *config.Config) any { return c.ClockControl }},
		{"driftfile", func(c *config.Config) any { return c.DriftFile }},
		{"dumpdir", func(c *config.Config) any { return c.DumpDir }},
		{"logdir", func(c *config.Config) any { return c.LogDir }},
		{"makestep", func(c *config.Config) any { return c.MakeStep }},
		{"log", func(c *config.Config) any { return c.Log }},
		{"user", func(c *config.Config) any { return c.User }},
		{"pidfile", func(c *config.Config) any { return c.PIDFile }},
		{"auditlog", func(c *config.Config) any { return auditSettings(c.Audit) }},
	}
}

type restartOnlyDirective struct {
	directive string
	get       func(*config.Config) any
}

// notApplied names every restart-only directive whose value differs between
// the running configuration and the reloaded one.
func notApplied(old, cur *config.Config) []string {
	var out []string
	for _, d := range restartOnly() {
		if reflect.DeepEqual(d.get(old), d.get(cur)) {
			continue
		}
		where := cur.Positions[d.directive]
		loc := "removed"
		if where.File != "" {
			loc = where.String()
		}
		out = append(out, fmt.Sprintf("%s: %s changed: takes effect only after a restart", loc, d.directive))
	}
	return out
}

// auditSettings compares audit directives by value (auditship is a pointer).
// auditrotate is left out: a reload applies it (auditTrail.reload).
func auditSettings(a config.Audit) any {
	a.RotateSize, a.RotateEvery, a.RotateKeep = 0, 0, 0
	ship := a.Ship
	a.Ship = nil
	if ship == nil {
		return a
	}
	return [2]any{a, *ship}
}
