package symkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

var (
	// ErrSyntax is returned (wrapped) for a line that is not ID [TYPE] KEY.
	ErrSyntax = errors.New("symkey: malformed keys file line")
	// ErrEncoding is returned (wrapped) for a key that does not decode.
	ErrEncoding = errors.New("symkey: invalid key encoding")
)

const (
	// maxLineLen is the longest line accepted: chrony reads the keys file
	// with a 2048-byte line buffer, so no longer line is one both daemons
	// read the same way.
	maxLineLen = 2047

	// bareHexMin: ntpd reads a bare key longer than 20 characters as hex
	// and a shorter one as ASCII (ntp_keys authreadkeys); chrony reads every
	// bare key as ASCII.
	bareHexMin = 21

	// minSecureLen is chrony's MIN_SECURE_KEY_LENGTH: a hash key shorter
	// than 80 bits is brute-forceable from one captured packet.
	minSecureLen = 10
)

// lineError is one problem on one line. Its text is the whole
// "file:line: key N: what" message; it unwraps to a package sentinel.
type lineError struct {
	sentinel error
	msg      string
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.sentinel }

// Parse reads a keys file in the format chrony and ntpd share:
//
//	# comment
//	ID KEY          chrony: type MD5
//	ID TYPE KEY     TYPE: chrony's AES128, AES256, MD5, SHA1, SHA256, SHA384,
//	                SHA512, SHA3-224..SHA3-512; ntpd/NTPsec's M, AES128CMAC,
//	                aes-128, sha1, sha224, sha256, ... (any case)
//
// KEY is HEX:digits, ASCII:text, or bare: bare text longer than 20 characters
// that is all hex digits is hex (ntpd's rule), anything else ASCII (chrony's).
// Lines whose first word starts with one of !;#% are comments (chrony), and a
// word starting with # ends the line (ntpd). Every problem is reported, each
// as "file:line: message", joined with errors.Join; on any error the Set is
// nil. Warnings name legacy and ambiguous keys.
func Parse(filename string, data []byte) (*Set, []string, error) {
	p := &parser{file: filename, seen: make(map[uint32]int)}
	// Line by line without splitting first: a file of half a million
	// lines must not cost half a million slice headers up front.
	for n, rest := 1, data; ; n++ {
		line, tail, more := bytes.Cut(rest, []byte("\n"))
		p.parseLine(n, line)
		if !more {
			break
		}
		rest = tail
	}
	if p.moreWarnings > 0 {
		p.warnings = append(p.warnings, fmt.Sprintf("%s: %d more warnings not shown", p.file, p.moreWarnings))
	}
	if p.moreErrs > 0 {
		p.errs = append(p.errs, &lineError{sentinel: p.errs[0].(*lineError).sentinel,
			msg: fmt.Sprintf("%s: %d more errors not shown", p.file, p.moreErrs)})
	}
	if len(p.errs) > 0 {
		return nil, p.warnings, errors.Join(p.errs...)
	}
	set, err := NewSet(p.keys...)
	return set, p.warnings, err
}

type parser struct {
	file     string
	keys     []*Key
	seen     map[uint32]int // key ID → line of first definition
	errs     []error
	warnings []string
	// problems beyond maxReported: counted, reported as one line each
	moreErrs, moreWarnings int
}

// maxReported caps the errors, and the warnings, one Parse returns: a keys
// file of 524,000 bad lines (a campaign's) made one 33 MB log line and
// 390 MB of memory. The first ones say what is wrong; a count says how
// much more.
const maxReported = 50

// where prefixes a message with file:line and, once known, the key ID.
func (p *parser) where(line int, id uint32) string {
	if id == 0 {
		return fmt.Sprintf("%s:%d: ", p.file, line)
	}
	return fmt.Sprintf("%s:%d: key %d: ", p.file, line, id)
}

func (p *parser) fail(line int, id uint32, sentinel error, format string, args ...any) {
	if len(p.errs) >= maxReported {
		p.moreErrs++
		return
	}
	msg := p.where(line, id) + fmt.Sprintf(format, args...)
	p.errs = append(p.errs, &lineError{sentinel: sentinel, msg: msg})
}

func (p *parser) warn(line int, id uint32, format string, args ...any) {
	if len(p.warnings) >= maxReported {
		p.moreWarnings++
		return
	}
	p.warnings = append(p.warnings, p.where(line, id)+fmt.Sprintf(format, args...))
}

func (p *parser) parseLine(n int, raw []byte) {
	if len(raw) > maxLineLen {
		p.fail(n, 0, ErrSyntax, "line is %d bytes long, more than chrony's %d", len(raw), maxLineLen)
		return
	}
	fields := words(string(raw))
	if len(fields) == 0 {
		return
	}
	if len(fields) > 3 {
		p.fail(n, 0, ErrSyntax, "want ID [TYPE] KEY, got %d fields (ntpd's per-key address list is not supported)", len(fields))
		return
	}
	if len(fields) < 2 {
		p.fail(n, 0, ErrSyntax, "want ID [TYPE] KEY, got 1 field")
		return
	}
	id, ok := p.parseID(n, fields[0])
	if !ok {
		return
	}
	t, ok := p.parseType(n, id, fields)
	if !ok {
		return
	}
	secret, ok := p.decodeKey(n, id, fields[len(fields)-1])
	if !ok {
		return
	}
	p.addKey(n, id, t, secret)
}

// words splits a line at ASCII white space, as chrony's isspace does (Unicode
// spaces are key bytes), and drops comments.
func words(line string) []string {
	fields := strings.FieldsFunc(line, isSpace)
	if len(fields) > 0 && strings.ContainsRune("!;#%", rune(fields[0][0])) {
		return nil
	}
	for i, f := range fields {
		if f[0] == '#' {
			return fields[:i]
		}
	}
	return fields
}

// parseID accepts decimal 1..2^32-1 and nothing else: chrony's sscanf would
// read "12abc" as 12, which hides typos. Messages echo a word only when it is
// all digits: a misplaced word may be part of a secret, and errors are logged.
func (p *parser) parseID(n int, s string) (uint32, bool) {
	if strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		p.fail(n, 0, ErrKeyID, "invalid key ID: must be a decimal number 1..4294967295")
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 32)
	switch {
	case err != nil:
		p.fail(n, 0, ErrKeyID, "invalid key ID: larger than 4294967295")
		return 0, false
	case v == 0:
		p.fail(n, 0, ErrKeyID, "invalid key ID 0: 0 means no key (RFC 5905 §7.3)")
		return 0, false
	}
	return uint32(v), true
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
}

func (p *parser) parseType(n int, id uint32, fields []string) (Type, bool) {
	if len(fields) == 2 {
		p.warn(n, id, "no type given, MD5 assumed as chrony does")
		return MD5, true
	}
	name := fields[1]
	if t, ok := lookupType(name); ok {
		return t, true
	}
	if unsupportedDigest(name) {
		p.fail(n, id, ErrType, "%s is not supported (no Go standard implementation, and chrony's Nettle builds lack it too): use AES128", strings.ToUpper(name))
		return 0, false
	}
	// The word is not echoed: with a space in a password, it is half of it.
	p.fail(n, id, ErrType, "unknown key type (supported: AES128, AES256, SHA1, MD5, SHA224, SHA256, SHA384, SHA512, SHA3-224, SHA3-256, SHA3-384, SHA3-512)")
	return 0, false
}

// decodeKey turns the KEY field into bytes, following chrony's HEX: and
// ASCII: prefixes and ntpd's length rule for bare keys.
func (p *parser) decodeKey(n int, id uint32, field string) ([]byte, bool) {
	switch {
	case strings.HasPrefix(field, "HEX:"):
		b, err := hex.DecodeString(field[len("HEX:"):])
		if err != nil || len(b) == 0 {
			p.fail(n, id, ErrEncoding, "HEX: key must be a non-empty, even number of hex digits")
			return nil, false
		}
		return b, true
	case strings.HasPrefix(field, "ASCII:"):
		field = field[len("ASCII:"):]
	case len(field) >= bareHexMin:
		if b, err := hex.DecodeString(field); err == nil {
			p.warn(n, id, "bare key of %d hex digits read as %d bytes of hex as ntpd does; chrony would read %d ASCII bytes: write HEX: or ASCII:", len(field), len(b), len(field))
			return b, true
		}
	}
	if field == "" {
		p.fail(n, id, ErrEncoding, "empty ASCII: key")
		return nil, false
	}
	// chrony stops a line at NUL and ntpd refuses unprintable keys: a control
	// character would make the daemons disagree on the secret.
	if strings.ContainsFunc(field, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		p.fail(n, id, ErrEncoding, "control character in ASCII key: use HEX:")
		return nil, false
	}
	return []byte(field), true
}

func (p *parser) addKey(n int, id uint32, t Type, secret []byte) {
	if want := t.KeySize(); want != 0 && len(secret) != want {
		p.fail(n, id, ErrKeyLength, "%v key must be %d bytes, got %d", t, want, len(secret))
		return
	}
	if len(secret) > MaxSecretLen {
		p.fail(n, id, ErrKeyLength, "key is %d bytes, more than %d", len(secret), MaxSecretLen)
		return
	}
	if first, dup := p.seen[id]; dup {
		p.fail(n, id, ErrDuplicate, "duplicate key ID (first defined on line %d)", first)
		return
	}
	p.seen[id] = n
	if t.Legacy() {
		p.warn(n, id, "%v is legacy, use AES128 (RFC 8573)", t)
	}
	if t.KeySize() == 0 && len(secret) < minSecureLen {
		p.warn(n, id, "key is %d bytes, shorter than the 80 bits chrony calls secure", len(secret))
	}
	k, err := NewKey(id, t, secret)
	if err != nil { // unreachable after the checks above; kept as a guard
		p.fail(n, id, err, "%v", err)
		return
	}
	p.keys = append(p.keys, k)
}
