package config

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"timegate/leap"
)

func TestLeapDirectives(t *testing.T) {
	c, err := Parse("t.conf", []byte("leapsectz right/UTC\nleapsecmode slew\nsmoothtime 400 0.001 leaponly\nsmoothport 1124\n"+
		"smoothallow 10.0.0.0/8 192.0.2.7\nsmoothallow 2001:db8::/32\nlocal stratum 8 distance 0.25\nmaxchange 86400 0 -1\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Leap
	if l.TablePath() != "/usr/share/zoneinfo/right/UTC" || l.Mode != leap.ModeSlew || l.SmoothPort != 1124 ||
		l.Smooth == nil || math.Abs(l.Smooth.MaxFreq-400e-6) > 1e-15 || len(l.SmoothAllow) != 3 ||
		l.SmoothAllow[1] != netip.MustParsePrefix("192.0.2.7/32") {
		t.Errorf("leap %+v", l)
	}
	if c.Local.Stratum != 8 || c.Local.Distance != 250*time.Millisecond || c.MaxChange != 86400*time.Second {
		t.Errorf("local %+v, maxchange %v", c.Local, c.MaxChange)
	}
	if c, _ := Parse("t.conf", []byte("local\n")); c.Local.Distance != time.Second {
		t.Errorf("default local distance %v", c.Local.Distance)
	}
}

func TestLeapDirectiveErrors(t *testing.T) {
	for conf, want := range map[string]string{
		"leapsectz ../../etc/passwd\n":                                      "t.conf:1: leapsectz: zone name",
		"leapsecmode sometimes\n":                                           "t.conf:1: leapsecmode: want step, slew or ignore",
		"smoothtime 400 0.001\n":                                            "t.conf:1: smoothtime: want MAX-FREQ MAX-WANDER leaponly",
		"smoothtime 400 0.001 leaponly\n":                                   "t.conf:1: smoothtime: needs smoothport N and smoothallow NET",
		"smoothtime 400 0.001 leaponly\nsmoothport 1123\nsmoothallow ::1\n": "t.conf:2: smoothport: 1123 is also the NTP or NTS-KE port",
		"smoothport 1200\n":                                                 "t.conf:1: smoothport: needs smoothtime",
		"smoothtime 400 0.001 leaponly\nsmoothport 1200\nsmoothallow ::1\nleapsecmode ignore\n": "smoothtime: leapsecmode ignore takes no leap",
		"smoothallow example.net\n":            "t.conf:1: smoothallow: not an address",
		"leapfile /a\nleapsectz right/UTC\n":   "t.conf:1: leapfile: leapsectz is also set (t.conf:2)",
		"local distance 0\n":                   "t.conf:1: local: must be a number of seconds",
		"maxchange 1000 1 -1\n":                "t.conf:1: maxchange: START must be 0",
		"smoothtime -1 0.001 leaponly\n":       "t.conf:1: smoothtime: max-freq",
		"leapsecmode step\nleapsecmode slew\n": "t.conf:2: leapsecmode: already set at line 1",
	} {
		_, err := Parse("t.conf", []byte(conf))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", conf, err, want)
		}
	}
	c, err := Parse("t.conf", []byte("leapsecmode system\nmaxchange 100 0 3\n"))
	if err != nil || c.Leap.Mode != leap.ModeStep || len(c.Warnings) != 2 {
		t.Errorf("system / maxchange IGNORE: %v, %+v", err, c.Warnings)
	}
}
