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
