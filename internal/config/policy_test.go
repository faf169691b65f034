package config

import (
	"strings"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy("fleet", []byte("# fleet policy\nrestrict default ignore\nrestrict 10.0.0.0 mask 255.0.0.0 limited\nratelimit interval 4 burst 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasRestrict || !p.HasRateLimit || len(p.Restrict) != 2 || p.RateLimit.Interval != 4 || p.RateLimit.Burst != 4 {
		t.Fatalf("%+v", p)
	}
	local, err := Parse("local.conf", []byte("restrict default limited\nratelimit interval 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := p.Overlay(local)
	if len(o.Restrict) != 2 || o.RateLimit.Interval != 4 || len(local.Restrict) != 1 || local.RateLimit.Interval != 2 {
		t.Fatal("overlay did not replace, or changed the local configuration")
	}
	rateOnly, err := ParsePolicy("fleet", []byte("ratelimit interval 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if o := rateOnly.Overlay(local); len(o.Restrict) != 1 || o.RateLimit.Interval != 5 {
		t.Fatal("a rate-only policy replaced the access rules")
	}
	for _, bad := range []string{"port 123\n", "server time.example.com\nrestrict default\n", "restrict default bogusflag\n", "ntskeystore etcd://a:1/p wrapkey /k\n"} {
		if _, err := ParsePolicy("fleet", []byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		} else if !strings.Contains(err.Error(), "fleet:") {
			t.Errorf("error does not name the policy and line: %v", err)
		}
	}
	if _, err := ParsePolicy("fleet", make([]byte, MaxPolicySize+1)); err == nil {
		t.Error("oversize policy accepted")
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("restrict default ignore\nratelimit interval 4\n"))
	f.Add([]byte("allow 10.0.0.0/8\ndeny all\n"))
	f.Add([]byte("include /etc/passwd\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := ParsePolicy("fleet", data); err != nil {
			return
		}
		// Whatever a store writer gets accepted sets nothing but policy.
		cfg, err := Parse("fleet", data)
		if err != nil {
			t.Fatalf("ParsePolicy accepted what Parse refuses: %v", err)
		}
		d := Defaults()
		if cfg.Port != d.Port || cfg.NTSPort != d.NTSPort || len(cfg.Sources) != 0 || cfg.KeyFile != "" ||
			cfg.NTSKeyStore != nil || cfg.Audit.Log != "" || cfg.Local != nil || len(cfg.BindAddresses) != 0 {
			t.Fatalf("a fleet policy set more than policy: %q", data)
		}
	})
}

// A fleet publishes a key only when none is pending, so a propagation
// delay as long as ntsrotate stretches the rotation to the delay: say so.
func TestKeyStoreDelayWarning(t *testing.T) {
	for _, tc := range []struct {
		conf string
		warn bool
	}{
		{"ntsrotate 3600\nntskeystore etcd://h:1/p wrapkey /k delay 30\n", false},
		{"ntsrotate 3600\nntskeystore etcd://h:1/p wrapkey /k delay 3600\n", true},
		{"ntskeystore etcd://h:1/p wrapkey /k\nntsrotate 300\n", true}, // default delay 10 min
		{"ntsrotate 0\nntskeystore etcd://h:1/p wrapkey /k delay 7200\n", false},
		{"ntsrotate 60\n", false},
	} {
		c, err := Parse("t.conf", []byte(tc.conf))
		if err != nil {
			t.Fatalf("%q: %v", tc.conf, err)
		}
		got := strings.Contains(warningsText(c), "not shorter than ntsrotate")
		if got != tc.warn {
			t.Errorf("%q: warned %v, want %v (%s)", tc.conf, got, tc.warn, warningsText(c))
		}
		if got && !strings.Contains(warningsText(c), "t.conf:") {
			t.Errorf("%q: warning names no position: %s", tc.conf, warningsText(c))
		}
	}
}

func TestKeyStoreDirective(t *testing.T) {
	c, err := Parse("t.conf", []byte("ntskeystore etcd://10.0.0.1:2379,[::1]:2379/timegate/f1/ wrapkey /k delay 30 grace 3600 ca /ca cert /c key /kk user tg passwordfile /pw\nntsntpserver ntp1.example.net port 123\n"))
	if err != nil {
		t.Fatal(err)
	}
	ks := c.NTSKeyStore
	if ks == nil || len(ks.Endpoints) != 2 || ks.Prefix != "/timegate/f1" || ks.Delay.Seconds() != 30 || ks.Grace.Seconds() != 3600 ||
		ks.CA != "/ca" || ks.Cert != "/c" || ks.Key != "/kk" || ks.User != "tg" || ks.PasswordFile != "/pw" {
		t.Fatalf("%+v", ks)
	}
	if c.NTSNTPServer != "ntp1.example.net" || c.NTSNTPPort != 123 {
		t.Fatalf("ntsntpserver %q port %d", c.NTSNTPServer, c.NTSNTPPort)
	}
	for _, bad := range []string{
		"ntskeystore etcd://h:1/p\n",                           // no wrapkey
		"ntskeystore http://h:1/p wrapkey /k\n",                // scheme
		"ntskeystore etcd://h/p wrapkey /k\n",                  // no port
		"ntskeystore etcd://h:1 wrapkey /k\n",                  // no prefix
		"ntskeystore etcd://h:1/p wrapkey /k cert /c\n",        // cert without key
		"ntskeystore etcd://h:1/p wrapkey /k cert /c key /k\n", // cert without ca
		"ntskeystore etcd://h:1/p wrapkey /k user u\n",         // user without password
		"ntskeystore etcd://h:1/p wrapkey /k delay 0\n",        // delay range
		"ntskeystore etcd://h:1/p wrapkey /k bogus 1\n",
		"ntsntpserver h port 0\n",
		"ntsntpserver h 123\n",
	} {
		if _, err := Parse("t.conf", []byte(bad)); err == nil || !strings.Contains(err.Error(), "t.conf:1:") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
