package gateway

import (
	"fmt"
	"strconv"
	"strings"

	"timegate/internal/config"
	"timegate/internal/secfile"
	"timegate/ntp"
	"timegate/policy"
	"timegate/ratelimit"
	"timegate/symkey"
)

// buildPolicy builds the access policy from the parsed restrict lines.
func buildPolicy(cfg *config.Config) (*policy.Policy, bool, error) {
	rules := make([]policy.Rule, 0, len(cfg.Restrict))
	anyKoD := false
	for _, r := range cfg.Restrict {
		anyKoD = anyKoD || r.Rule.Flags&policy.FlagKoD != 0
		rules = append(rules, r.Rule)
	}
	p, err := policy.New(rules)
	if err != nil {
		return nil, false, fmt.Errorf("%w: restrict: %v", config.ErrConfig, err)
	}
	return p, anyKoD, nil
}

// rateConfig maps a ratelimit directive onto the table's configuration.
func rateConfig(rl config.RateLimit, clientLogLimit int64, kod bool) ratelimit.Config {
	return ratelimit.Config{
		Interval: rl.Interval,
		Burst:    rl.Burst,
		Leak:     rl.Leak,
		KoD:      rl.KoD || kod,
		Size:     ratelimit.EntriesForBytes(clientLogLimit),
		PrefixV4: rl.Prefix4,
		PrefixV6: rl.Prefix6,
	}
}

// buildGate builds the admission gate for the NTP service.
func buildGate(cfg *config.Config) (*gate, error) {
	pol, anyKoD, err := buildPolicy(cfg)
	if err != nil {
		return nil, err
	}
	g := &gate{policy: pol, rateKoD: cfg.RateLimit.KoD}
	if cfg.RateLimit.Enabled {
		rc := rateConfig(cfg.RateLimit, cfg.ClientLogLimit, anyKoD)
		if err := rc.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: ratelimit: %v", config.ErrConfig, cfg.Positions["ratelimit"], err)
		}
		if g.table, err = ratelimit.New(rc); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// loadKeys reads the symmetric keys file, refusing one that others can read.
func loadKeys(cfg *config.Config) (*symkey.Set, []string, error) {
	if cfg.KeyFile == "" {
		return nil, nil, nil
	}
	data, err := secfile.ReadPrivateOwned(cfg.KeyFile, trustedOwners(cfg)...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: keyfile: %v", config.ErrConfig, cfg.Positions["keyfile"], err)
	}
	set, warnings, err := symkey.Parse(cfg.KeyFile, data)
	if err == nil {
		err = checkKeyTypes(cfg, cfg.KeyFile, set)
	}
	if err != nil || cfg.TrustedKeys == nil {
		return set, warnings, err
	}
	return trustedOnly(set, cfg, warnings)
}

// maxKeyTypeErrors caps the keys named in a `keytypes cmac` refusal: a
// keys file of thousands of MD5 keys must not become one enormous error.
const maxKeyTypeErrors = 10

// checkKeyTypes refuses, under `keytypes cmac`, every key that is not
// AES-CMAC: with it no request and no upstream can be authenticated by an
// MD5 or SHA-1 digest, which an attacker may downgrade a client to.
func checkKeyTypes(cfg *config.Config, path string, set *symkey.Set) error {
	if !cfg.CMACOnly || set == nil {
		return nil
	}
	var bad []string
	for k := range set.All() {
		if !k.Type().CMAC() && len(bad) < maxKeyTypeErrors {
			bad = append(bad, fmt.Sprintf("key %d (%v)", k.ID(), k.Type()))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: keytypes cmac: %s refuses %s: replace them with AES128 keys (gatectl keys sym gen) or set keytypes any",
		config.ErrConfig, cfg.Positions["keytypes"], path, strings.Join(bad, ", "))
}

// trustedOnly keeps the keys ntpd's trustedkey lines name: in ntpd a key
// that is not trusted authenticates nothing, in either direction.
func trustedOnly(set *symkey.Set, cfg *config.Config, warnings []string) (*symkey.Set, []string, error) {
	trusted := make(map[uint32]bool, len(cfg.TrustedKeys))
	for _, id := range cfg.TrustedKeys {
		trusted[id] = true
	}
	var keep []*symkey.Key
	var untrusted []string
	for k := range set.All() {
		if trusted[k.ID()] {
			keep = append(keep, k)
			delete(trusted, k.ID())
			continue
		}
		untrusted = append(untrusted, strconv.FormatUint(uint64(k.ID()), 10))
	}
	// One line for all of them: an NTPsec ntp.keys holds 20 keys, and
	// trustedkey usually names one or two.
	if len(untrusted) > 0 {
		warnings = append(warnings, fmt.Sprintf("%s: not listed by trustedkey, so authenticating nothing: key(s) %s",
			cfg.KeyFile, strings.Join(untrusted, ", ")))
	}
	for _, id := range cfg.TrustedKeys {
		if trusted[id] {
			warnings = append(warnings, fmt.Sprintf("%s: trustedkey %d: no such key in %s", cfg.Positions["trustedkey"], id, cfg.KeyFile))
			delete(trusted, id)
		}
	}
	kept, err := symkey.NewSet(keep...)
	return kept, warnings, err
}

// keyLookup adapts a key set to the responder's lookup.
func keyLookup(set *symkey.Set) ntp.KeyLookup {
	if set == nil || set.Len() == 0 {
		return nil
	}
	return func(id uint32) (ntp.MACKey, bool) {
		k, ok := set.Lookup(id)
		if !ok {
			return nil, false
		}
		return k, true
	}
}
