package etcdring

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"timegate/fleet"
	"timegate/internal/config"
	"timegate/internal/secfile"
)

// dialTimeout bounds one connection attempt, authentication included.
const dialTimeout = 5 * time.Second

// Dialer returns a function that connects to the store ks names, with its
// TLS and authentication settings. Files are read now, so that a missing CA
// or key fails the start with its name, not a later reconnection.
func Dialer(ks *config.KeyStore, log *zap.Logger, owners ...int) (func() (Store, error), error) {
	cfg := clientv3.Config{
		Endpoints:   ks.Endpoints,
		DialTimeout: dialTimeout,
		// The client retries quietly; its own warnings would repeat every
		// attempt of an outage this package reports once.
		Logger: log.WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
	}
	if ks.CA != "" {
		t, err := tlsConfig(ks, owners)
		if err != nil {
			return nil, err
		}
		cfg.TLS = t
	}
	if ks.User != "" {
		pw, err := secfile.ReadPrivateOwned(ks.PasswordFile, owners...)
		if err != nil {
			return nil, fmt.Errorf("etcdring: passwordfile: %w", err)
		}
		cfg.Username, cfg.Password = ks.User, strings.TrimRight(string(pw), "\r\n")
	}
	return func() (Store, error) {
		cli, err := clientv3.New(cfg)
		if err != nil {
			return nil, err
		}
		return Etcd(cli), nil
	}, nil
}

func tlsConfig(ks *config.KeyStore, owners []int) (*tls.Config, error) {
	pem, err := os.ReadFile(ks.CA)
	if err != nil {
		return nil, fmt.Errorf("etcdring: ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("etcdring: ca: %s: no PEM certificate", ks.CA)
	}
	t := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if ks.Cert != "" {
		certPEM, err := os.ReadFile(ks.Cert)
		if err != nil {
			return nil, fmt.Errorf("etcdring: cert: %w", err)
		}
		keyPEM, err := secfile.ReadPrivateOwned(ks.Key, owners...)
		if err != nil {
			return nil, fmt.Errorf("etcdring: key: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("etcdring: cert/key: %w", err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}

// ReadWrapKey reads the fleet wrapping key: 32 random bytes, raw or as 64
// hex digits (a trailing newline allowed), in a file only the daemon reads.
func ReadWrapKey(path string, owners ...int) ([]byte, error) {
	data, err := secfile.ReadPrivateOwned(path, owners...)
	if err != nil {
		return nil, fmt.Errorf("etcdring: wrapkey: %w", err)
	}
	if len(data) == fleet.WrapKeyLen {
		return data, nil
	}
	s := strings.TrimSpace(string(data))
	if len(s) == 2*fleet.WrapKeyLen {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("etcdring: wrapkey: " + path + ": want 32 random bytes, raw or as 64 hex digits (e.g. `head -c 32 /dev/urandom > FILE`)")
}
