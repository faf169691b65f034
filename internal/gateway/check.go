package gateway

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"timegate/certs"
	"timegate/internal/config"
	"timegate/internal/engine"
	"timegate/internal/etcdring"
)

// Check validates everything a configuration refers to without opening a
// socket or writing a file: directives, restrict rules, rate-limit
// parameters, the keys file and the NTS certificate pair. It is what
// `timegate -check-config` and `gatectl config check` run, and the same code
// a start or reload runs, so a file that passes the check also loads.
func Check(path string) error {
	_, err := CheckWithWarnings(path)
	return err
}

// CheckWithWarnings is Check that also returns the warnings start-up would
// log: lines without effect here, keys-file warnings, and the reasons a
// configuration can never synchronise, each with its fix.
func CheckWithWarnings(path string) ([]string, error) {
	cfg, err := config.Load(path)
	if cfg == nil {
		return nil, err
	}
	var warnings []string
	for _, w := range cfg.Warnings {
		warnings = append(warnings, w.String())
	}
	keys, keyWarnings, _ := loadKeys(cfg)
	warnings = append(warnings, keyWarnings...)
	warnings = append(warnings, syncWarnings(cfg, keys)...)
	if tb, err := readLeap(cfg); err == nil && tb != nil && tb.Expired(time.Now()) {
		warnings = append(warnings, fmt.Sprintf("%s: %s: %s expired on %s: leap seconds it does not list are taken from the upstream vote",
			cfg.Positions[leapDirectiveName(cfg)], leapDirectiveName(cfg), cfg.Leap.TablePath(), tb.Expires.Format(time.DateOnly)))
	}
	// Report problems with the files the configuration names even when
	// some lines did not parse: an operator fixes everything in one pass.
	return warnings, errors.Join(err, CheckConfig(cfg))
}

// CheckConfig is Check for an already parsed configuration.
func CheckConfig(cfg *config.Config) error {
	_, gateErr := buildGate(cfg)
	_, _, keyErr := loadKeys(cfg)
	_, keErr := keRateConfig(cfg)
	var certErr error
	if cfg.NTSServerCert != "" {
		if _, err := certs.LoadFilesOwned(cfg.NTSServerCert, cfg.NTSServerKey, time.Now(), trustedOwners(cfg)...); err != nil {
			certErr = fmt.Errorf("%w: %s: ntsservercert: %v", config.ErrConfig, cfg.Positions["ntsservercert"], err)
		}
	}
	var trustErr error
	if err := engine.CheckTrust(cfg.NTSTrustedCerts); err != nil {
		trustErr = fmt.Errorf("%w: %s: %v", config.ErrConfig, cfg.Positions["ntstrustedcerts"], err)
	}
	_, leapErr := readLeap(cfg)
	return errors.Join(gateErr, keyErr, keErr, certErr, trustErr, checkAudit(cfg), checkKeyStore(cfg), leapErr)
}

// checkKeyStore reads the files ntskeystore names (wrapping key, TLS
// files, password) as a start would, without contacting etcd.
func checkKeyStore(cfg *config.Config) error {
	ks := cfg.NTSKeyStore
	if ks == nil {
		return nil
	}
	wrap, err := etcdring.ReadWrapKey(ks.WrapKey, trustedOwners(cfg)...)
	clear(wrap)
	if err == nil {
		_, err = etcdring.Dialer(ks, zap.NewNop(), trustedOwners(cfg)...)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: ntskeystore: %v", config.ErrConfig, cfg.Positions["ntskeystore"], err)
	}
	return nil
}
