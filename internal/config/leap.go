package config

import (
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"timegate/leap"
)

// Leap is the leap-second configuration: where the table comes from
// (chrony's leapsectz, ntpd's leapfile, chrony 4.5's leapseclist), how the
// served clock takes a leap (leapsecmode), and the opt-in smoothing port
// (smoothtime … leaponly, smoothport, smoothallow).
type Leap struct {
	// TZ is a right/ zone: a name under ZoneDir, or an absolute path.
	TZ string
	// File is a leap-seconds.list file.
	File string
	Mode leap.Mode
	// Smooth is set by `smoothtime MAXFREQ MAXWANDER leaponly`.
	Smooth *Smooth
	// SmoothPort serves smoothed time, and only to SmoothAllow.
	SmoothPort  int
	SmoothAllow []netip.Prefix
}

// Smooth is chrony's smoothtime, in s/s and s/s².
type Smooth struct {
	MaxFreq, MaxWander float64
}

// ZoneDir is where `leapsectz NAME` is looked up when NAME is not absolute.
const ZoneDir = "/usr/share/zoneinfo"

// TablePath is the file the leap table is read from, "" for none.
func (l *Leap) TablePath() string {
	switch {
	case l.File != "":
		return l.File
	case l.TZ == "":
		return ""
	case filepath.IsAbs(l.TZ):
		return l.TZ
	}
	return filepath.Join(ZoneDir, l.TZ)
}

func leapDirective(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	switch name {
	case "leapsectz":
		// A zone name must stay inside the zoneinfo directory.
		if !filepath.IsAbs(args[0]) && (!filepath.IsLocal(args[0]) || strings.Contains(args[0], "..")) {
			p.fail(name, "zone name %q must be a path under %s (e.g. right/UTC) or absolute", args[0], ZoneDir)
			return
		}
		p.cfg.Leap.TZ = args[0]
	case "leapfile", "leapseclist":
		p.cfg.Leap.File = args[0]
	case "leapsecmode":
		switch args[0] {
		case "step":
			p.cfg.Leap.Mode = leap.ModeStep
		case "slew":
			p.cfg.Leap.Mode = leap.ModeSlew
		case "ignore":
			p.cfg.Leap.Mode = leap.ModeIgnore
		case "system":
			// chronyd -x falls back to step the same way: timegate never
			// has the kernel insert the second.
			p.cfg.Leap.Mode = leap.ModeStep
			p.warn(name, "system: timegate does not arm the kernel for the leap second; served time steps (leapsecmode step)")
		default:
			p.fail(name, "want step, slew or ignore, got %q", args[0])
		}
	}
}

// smoothtime MAXFREQ MAXWANDER leaponly, in ppm and ppm/s as chrony's.
func smoothTime(p *parser, name string, args []string) {
	if len(args) != 3 || args[2] != "leaponly" {
		p.fail(name, "want MAX-FREQ MAX-WANDER leaponly: only leap seconds are smoothed (smoothing every correction is not implemented)")
		return
	}
	f, err1 := strconv.ParseFloat(args[0], 64)
	w, err2 := strconv.ParseFloat(args[1], 64)
	if err1 != nil || err2 != nil || !(f > 0 && f <= 100000) || !(w > 0 && w <= 100000) || math.IsNaN(f+w) {
		p.fail(name, "max-freq (ppm) and max-wander (ppm/s) must be positive numbers up to 100000, got %q %q", args[0], args[1])
		return
	}
	p.cfg.Leap.Smooth = &Smooth{MaxFreq: f * 1e-6, MaxWander: w * 1e-6}
}

func smoothPort(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	if v, ok := p.intArg(name, "port", args[0], 1, 65535); ok {
		p.cfg.Leap.SmoothPort = v
	}
}

// smoothallow NET...: the networks the smoothing port answers.
func smoothAllow(p *parser, name string, args []string) {
	if len(args) == 0 {
		p.fail(name, "needs at least one address or ADDR/PREFIX")
		return
	}
	for _, a := range args {
		pf, err := netip.ParsePrefix(a)
		if err != nil {
			ad, err2 := netip.ParseAddr(a)
			if err2 != nil || ad.Zone() != "" {
				p.fail(name, "not an address or ADDR/PREFIX: %q", a)
				continue
			}
			pf = netip.PrefixFrom(ad, ad.BitLen())
		}
		p.cfg.Leap.SmoothAllow = append(p.cfg.Leap.SmoothAllow, pf.Masked())
	}
}

// finishLeap checks that the smoothing directives come together and can
// never put smoothed time on the port that serves true UTC.
func (p *parser) finishLeap() {
	l := &p.cfg.Leap
	at := func(ds ...string) string {
		for _, d := range ds {
			if pos, ok := p.cfg.Positions[d]; ok {
				return pos.String()
			}
		}
		return p.name
	}
	if l.TZ != "" && l.File != "" {
		p.failAt(at("leapfile", "leapseclist"), "leapfile", "leapsectz is also set (%s): give one leap-second table", at("leapsectz"))
	}
	smooth := l.Smooth != nil || l.SmoothPort != 0 || len(l.SmoothAllow) > 0
	if !smooth {
		return
	}
	switch {
	case l.Smooth == nil:
		p.failAt(at("smoothport"), "smoothport", "needs smoothtime MAX-FREQ MAX-WANDER leaponly")
	case l.SmoothPort == 0 || len(l.SmoothAllow) == 0:
		p.failAt(at("smoothtime"), "smoothtime", "needs smoothport N and smoothallow NET: smoothed time is served only on its own port, to the networks named")
	case l.SmoothPort == p.cfg.Port || l.SmoothPort == p.cfg.NTSPort:
		p.failAt(at("smoothport"), "smoothport", "%d is also the NTP or NTS-KE port: smoothed and true time never share an address and port", l.SmoothPort)
	case l.Mode == leap.ModeIgnore:
		p.failAt(at("smoothtime"), "smoothtime", "leapsecmode ignore takes no leap, so there is none to smooth")
	}
}

// failAt reports an error found after parsing, at the directive's line.
func (p *parser) failAt(pos, directive, format string, args ...any) {
	p.addErr(fmt.Errorf("%w: %s: %s: %s", ErrConfig, pos, directive, fmt.Sprintf(format, args...)))
}
