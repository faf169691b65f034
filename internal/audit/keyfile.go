package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"timegate/audit"
	"timegate/internal/secfile"
)

// KeyFileName is the audit key's name in the state directory.
const KeyFileName = "auditkey"

// keyFileMode: the seed signs checkpoints; anyone who reads it can forge
// them, so it is private like the NTS key ring. The public half beside it
// (KEY.pub) is 0644: it is meant to be handed to verifiers.
const (
	keyFileMode = 0o600
	pubFileMode = 0o644
)

// LoadOrCreateKey reads the audit signing key at path, or, when there is
// none, generates one of algorithm alg from rand and writes it atomically
// (mode 0600), with its public key at path+".pub". created says which.
// An existing key of another algorithm than alg is an error: silently
// switching algorithms would break verification with the old public key.
func LoadOrCreateKey(path string, alg audit.Alg, rand io.Reader) (s *audit.Signer, created bool, err error) {
	data, err := secfile.ReadPrivate(path)
	switch {
	case err == nil:
		s, err = audit.ParseSigner(data)
		if err != nil {
			return nil, false, fmt.Errorf("audit key %s: %w", path, err)
		}
		if s.Public().Alg != alg {
			return nil, false, fmt.Errorf("audit key %s is %s, configured %s: move it aside to generate a new key", path, s.Public().Alg, alg)
		}
		return s, false, writePublic(path, s)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	if s, err = audit.GenerateSigner(alg, rand); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	if err := secfile.WriteAtomic(path, s.MarshalText(), keyFileMode); err != nil {
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	return s, true, writePublic(path, s)
}

// writePublic (re)writes KEY.pub when it is missing or differs, so the
// file beside the key is always its public half.
func writePublic(path string, s *audit.Signer) error {
	text := s.Public().Text()
	if old, err := os.ReadFile(path + ".pub"); err == nil && string(old) == text {
		return nil
	}
	if err := secfile.WriteAtomic(path+".pub", []byte(text), pubFileMode); err != nil {
		return fmt.Errorf("audit public key: %w", err)
	}
	return nil
}
