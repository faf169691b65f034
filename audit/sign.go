package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Alg is a checkpoint signature algorithm.
type Alg string

// Algorithms. ML-DSA-65 (FIPS 204) is the default: an audit trail is
// evidence that must outlive the signing key by years, so it is signed with
// a scheme that a future quantum computer does not break. Ed25519 is
// offered for collectors and tools that cannot verify ML-DSA yet.
const (
	MLDSA65 Alg = "ml-dsa-65"
	Ed25519 Alg = "ed25519"
)

// signContext separates audit checkpoint signatures from any other use of
// the key (FIPS 204 context string; prefixed to the message for Ed25519).
const signContext = "timegate-audit-checkpoint-v1"

// seedSize is the secret both algorithms derive their key pair from.
const seedSize = 32

// ParseAlg accepts an algorithm name as the config and key files spell it.
func ParseAlg(s string) (Alg, error) {
	switch Alg(strings.ToLower(s)) {
	case MLDSA65, "mldsa65":
		return MLDSA65, nil
	case Ed25519:
		return Ed25519, nil
	}
	return "", fmt.Errorf("audit: unknown signature algorithm %q (want ml-dsa-65 or ed25519)", s)
}

// ErrKey marks a malformed key file or public key.
var ErrKey = errors.New("audit: bad key")

// PublicKey verifies checkpoints.
type PublicKey struct {
	Alg   Alg
	Bytes []byte
}

// Fingerprint names the key in checkpoints: 16 hex digits of its SHA-256.
func (p PublicKey) Fingerprint() string {
	h := sha256.Sum256(append([]byte(p.Alg+":"), p.Bytes...))
	return hex.EncodeToString(h[:8])
}

// Text is the public key file format, one line:
// `timegate-audit-pub v1 ALG BASE64`.
func (p PublicKey) Text() string {
	return fmt.Sprintf("timegate-audit-pub v1 %s %s\n", p.Alg, base64.StdEncoding.EncodeToString(p.Bytes))
}

// ParsePublicKey reads the Text form.
func ParsePublicKey(text []byte) (PublicKey, error) {
	alg, raw, err := parseKeyLine(text, "timegate-audit-pub")
	if err != nil {
		return PublicKey{}, err
	}
	want := map[Alg]int{MLDSA65: mldsa65.PublicKeySize, Ed25519: ed25519.PublicKeySize}[alg]
	if len(raw) != want {
		return PublicKey{}, fmt.Errorf("%w: %s public key is %d bytes, want %d", ErrKey, alg, len(raw), want)
	}
	return PublicKey{Alg: alg, Bytes: raw}, nil
}

// Verify checks sig over msg.
func (p PublicKey) Verify(msg, sig []byte) bool {
	switch p.Alg {
	case MLDSA65:
		var pk mldsa65.PublicKey
		if len(p.Bytes) != mldsa65.PublicKeySize || pk.UnmarshalBinary(p.Bytes) != nil {
			return false
		}
		return mldsa65.Verify(&pk, msg, []byte(signContext), sig)
	case Ed25519:
		if len(p.Bytes) != ed25519.PublicKeySize {
			return false
		}
		return ed25519.Verify(ed25519.PublicKey(p.Bytes), edMessage(msg), sig)
	}
	return false
}

// Signer signs checkpoints. It holds only the 32-byte seed's expansion.
type Signer struct {
	seed [seedSize]byte
	pub  PublicKey
	ml   *mldsa65.PrivateKey
	ed   ed25519.PrivateKey
}

// GenerateSigner makes a new key from rand.
func GenerateSigner(alg Alg, rand io.Reader) (*Signer, error) {
	var seed [seedSize]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("audit: key generation: %w", err)
	}
	return newSigner(alg, seed)
}

func newSigner(alg Alg, seed [seedSize]byte) (*Signer, error) {
	s := &Signer{seed: seed}
	switch alg {
	case MLDSA65:
		pk, sk := mldsa65.NewKeyFromSeed(&seed)
		s.ml = sk
		s.pub = PublicKey{Alg: alg, Bytes: pk.Bytes()}
	case Ed25519:
		s.ed = ed25519.NewKeyFromSeed(seed[:])
		s.pub = PublicKey{Alg: alg, Bytes: []byte(s.ed.Public().(ed25519.PublicKey))}
	default:
		return nil, fmt.Errorf("%w: algorithm %q", ErrKey, alg)
	}
	return s, nil
}

// Public returns the verifying key.
func (s *Signer) Public() PublicKey { return s.pub }

// Sign signs msg. ML-DSA-65 signs in its deterministic variant (FIPS 204
// §3.4 allows it): no randomness is needed, so the core stays pure.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	if s.ml != nil {
		sig := make([]byte, mldsa65.SignatureSize)
		if err := mldsa65.SignTo(s.ml, msg, []byte(signContext), false, sig); err != nil {
			return nil, err
		}
		return sig, nil
	}
	return ed25519.Sign(s.ed, edMessage(msg)), nil
}

func edMessage(msg []byte) []byte {
	return append([]byte(signContext+"\x00"), msg...)
}

// MarshalText is the private key file format, one line:
// `timegate-audit-key v1 ALG BASE64-SEED`. The file must be kept 0600.
func (s *Signer) MarshalText() []byte {
	return fmt.Appendf(nil, "timegate-audit-key v1 %s %s\n", s.pub.Alg, base64.StdEncoding.EncodeToString(s.seed[:]))
}

// ParseSigner reads the MarshalText form.
func ParseSigner(text []byte) (*Signer, error) {
	alg, raw, err := parseKeyLine(text, "timegate-audit-key")
	if err != nil {
		return nil, err
	}
	if len(raw) != seedSize {
		return nil, fmt.Errorf("%w: seed is %d bytes, want %d", ErrKey, len(raw), seedSize)
	}
	return newSigner(alg, [seedSize]byte(raw))
}

func parseKeyLine(text []byte, magic string) (Alg, []byte, error) {
	f := strings.Fields(string(text))
	if len(f) != 4 || f[0] != magic || f[1] != "v1" {
		return "", nil, fmt.Errorf("%w: want one line %q", ErrKey, magic+" v1 ALG BASE64")
	}
	alg, err := ParseAlg(f[2])
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	raw, err := base64.StdEncoding.DecodeString(f[3])
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return alg, raw, nil
}
