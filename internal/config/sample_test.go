package config

import (
	"os"
	"testing"
)

// The sample configuration shipped at the top of the repository must stay
// true to the parser.
func TestSampleConfigParses(t *testing.T) {
	data, err := os.ReadFile("../../timegate.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("timegate.conf.example", data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 123 || len(c.Sources) != 3 || len(c.Restrict) != 6 {
		t.Errorf("sample parsed unexpectedly: port %d, %d sources, %d restrict", c.Port, len(c.Sources), len(c.Restrict))
	}
}

func TestEmbeddedDefaultsParse(t *testing.T) {
	c, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != DefaultPort || c.NTSPort != DefaultNTSPort || !c.RateLimit.Enabled {
		t.Errorf("embedded defaults: %+v", c)
	}
	// Issue 2: the defaults name public NTS servers and trust only NTS.
	if len(c.Sources) < 3 || c.AuthSelectMode != "require" {
		t.Fatalf("embedded defaults name %d sources, authselectmode %q", len(c.Sources), c.AuthSelectMode)
	}
	for _, s := range c.Sources {
		if !s.NTS {
			t.Errorf("embedded source %s is not NTS", s.Host)
		}
	}
}
