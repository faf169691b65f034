package ratelimit

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultsValid(t *testing.T) {
	for name, c := range map[string]Config{
		"ntp":     DefaultConfig(),
		"nts-ke":  DefaultNTSKEConfig(),
		"command": DefaultCommandConfig(),
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := DefaultConfig()
	if c.Interval != 3 || c.Burst != 8 || c.Leak != 2 || c.KoD {
		t.Errorf("DefaultConfig() = %+v, want chrony's interval 3 burst 8 leak 2, no kod", c)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // substring of the message; "" = valid
	}{
		{"default", func(*Config) {}, ""},
		{"interval min", func(c *Config) { c.Interval = MinInterval }, ""},
		{"interval max", func(c *Config) { c.Interval = MaxInterval }, ""},
		{"interval low", func(c *Config) { c.Interval = -20 }, "interval must be -19..12, got -20"},
		{"interval high", func(c *Config) { c.Interval = 13 }, "interval must be -19..12, got 13"},
		{"burst zero", func(c *Config) { c.Burst = 0 }, "burst must be 1..255, got 0"},
		{"burst high", func(c *Config) { c.Burst = 256 }, "burst must be 1..255, got 256"},
		{"leak zero", func(c *Config) { c.Leak = 0 }, "leak must be 1..4, got 0"},
		{"leak high", func(c *Config) { c.Leak = 5 }, "leak must be 1..4, got 5"},
		{"size small", func(c *Config) { c.Size = MinSize - 1 }, "size (entries) must be"},
		{"size huge", func(c *Config) { c.Size = MaxSize + 1 }, "size (entries) must be"},
		{"v4 prefix", func(c *Config) { c.PrefixV4 = 8 }, "IPv4 prefix must be 16..32, got 8"},
		{"v4 prefix long", func(c *Config) { c.PrefixV4 = 33 }, "IPv4 prefix must be 16..32, got 33"},
		{"v6 prefix", func(c *Config) { c.PrefixV6 = 129 }, "IPv6 prefix must be 32..128, got 129"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate() = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %q, want it to contain %q", err, tt.want)
			}
			if _, err := New(c); !errors.Is(err, ErrConfig) {
				t.Fatalf("New accepted an invalid config: %v", err)
			}
		})
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	err := Config{}.Validate()
	for _, want := range []string{"burst", "leak", "size", "IPv4 prefix", "IPv6 prefix"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Config{}.Validate() = %v, want a problem with %s", err, want)
		}
	}
}

func TestEntriesForBytes(t *testing.T) {
	tests := []struct {
		bytes int64
		want  int
	}{
		// chrony's 512 KiB holds 4096 addresses; our 63-octet entries, twice that.
		{DefaultClientLogLimit, 2 * DefaultSize},
		{0, MinSize},
		{-1, MinSize},
		{int64(EntryBytes) * 1000, 512},
		{int64(EntryBytes) * 1024, 1024},
		{1 << 40, MaxSize},
	}
	for _, tt := range tests {
		if got := EntriesForBytes(tt.bytes); got != tt.want {
			t.Errorf("EntriesForBytes(%d) = %d, want %d", tt.bytes, got, tt.want)
		}
		if got := EntriesForBytes(tt.bytes); int64(got*EntryBytes) > max(tt.bytes, int64(MinSize*EntryBytes)) {
			t.Errorf("EntriesForBytes(%d) = %d entries, which exceed the limit", tt.bytes, got)
		}
	}
}

func TestNewRoundsSizeDown(t *testing.T) {
	c := DefaultConfig()
	c.Size = 5000
	tb, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.Config().Size; got != 4096 {
		t.Errorf("Size 5000 built %d entries, want 4096", got)
	}
	if got := tb.Stats().Capacity; got != 4096 {
		t.Errorf("Stats().Capacity = %d, want 4096", got)
	}
}
