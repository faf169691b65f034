package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Policy is access policy and NTP rate limiting taken from a fleet's store:
// `restrict`, `allow`, `deny` and `ratelimit` lines only, in this file's
// syntax. What it sets replaces the local file's: the access rules when it
// has any access line, the rate limit when it has a `ratelimit` line.
type Policy struct {
	Restrict     []Restrict
	HasRestrict  bool
	RateLimit    RateLimit
	HasRateLimit bool
}

// MaxPolicySize bounds a fleet policy: it travels in one etcd value and is
// parsed on every gateway, so a store writer must not make it huge.
const MaxPolicySize = 64 << 10

// policyDirectives may come from the fleet store. Everything else (ports,
// keys, sources, paths) is a gateway's own and stays in its local file.
func policyDirective(word string) bool {
	switch word {
	case "restrict", "allow", "deny", "ratelimit":
		return true
	}
	return false
}

// ParsePolicy parses a fleet policy; name is used in error messages (the
// file it was published from, or the store key). Any other directive is an
// error, as is every error the full parser finds, all reported at once.
func ParsePolicy(name string, data []byte) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrConfig, name, MaxPolicySize)
	}
	p := &Policy{}
	var bad []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), maxLineLen)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		f := strings.Fields(text)
		if len(f) == 0 || strings.ContainsAny(f[0][:1], "!;%") {
			continue
		}
		word := strings.ToLower(f[0])
		switch {
		case !policyDirective(word):
			bad = append(bad, fmt.Errorf("%w: %s:%d: %s: only restrict, allow, deny and ratelimit may come from the fleet store", ErrConfig, name, line, f[0]))
		case word == "ratelimit":
			p.HasRateLimit = true
		default:
			p.HasRestrict = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	cfg, err := Parse(name, data)
	if err != nil {
		return nil, err
	}
	p.Restrict, p.RateLimit = cfg.Restrict, cfg.RateLimit
	return p, nil
}

// Overlay returns a copy of cfg with the policy's settings in place of the
// file's (the copy shares everything else).
func (p *Policy) Overlay(cfg *Config) *Config {
	c := *cfg
	if p.HasRestrict {
		c.Restrict = p.Restrict
	}
	if p.HasRateLimit {
		c.RateLimit = p.RateLimit
	}
	return &c
}

// ReadPolicyFile reads a policy file to publish, as configuration files are
// read: a regular file, bounded, opened without blocking.
func ReadPolicyFile(path string) ([]byte, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return data, nil
}
