package engine

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// trustConfig is the TLS configuration of NTS-KE clients: the system roots plus the CA
// certificates of ntstrustedcerts, as chrony trusts both unless told `nosystemcert`.
// nts.Exchange forces TLS 1.3, ALPN ntske/1 and SNI from the server's name; certificate
// and name verification are crypto/tls's, never skipped.
func trustConfig(files []string, noSystem bool) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS13}
	if len(files) == 0 && !noSystem {
		return conf, nil // nil RootCAs: the system roots
	}
	pool, err := x509.SystemCertPool()
	if err != nil || noSystem {
		pool = x509.NewCertPool()
	}
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("engine: ntstrustedcerts: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("engine: ntstrustedcerts: %s holds no PEM certificate", f)
		}
	}
	conf.RootCAs = pool
	return conf, nil
}

// CheckTrust reports whether the ntstrustedcerts files load, for
// `gatectl config check` and `timegate -check-config`.
func CheckTrust(files []string) error {
	_, err := trustConfig(files, false)
	return err
}
