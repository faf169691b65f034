package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Limits on what a configuration may hold. They keep a hostile or broken
// file (a generated one gone wrong) from making the daemon allocate without
// bound before it has even started.
const (
	maxFileSize  = 1 << 20 // 1 MiB of configuration is far beyond any real one
	maxLineLen   = 4096
	maxSources   = 64 // more upstreams add nothing to selection but load
	maxRestricts = 10000
)

// ErrConfig marks every configuration error.
var ErrConfig = errors.New("config")

// Load reads and parses the file at path.
//
// The file is read as includes are (readConfigFile): a regular file of at
// most maxFileSize bytes, opened without blocking. A campaign made SIGHUP
// read a 200 MB file whole, and hang the signal loop on a FIFO.
func Load(path string) (*Config, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return Parse(path, data)
}

// Parse parses configuration text; name is used in error messages. It
// returns every error found, joined, each as `file:line: directive: problem`.
// On error the returned Config holds what did parse, so a checker can go on
// to report problems with the files it names; it must not be served.
func Parse(name string, data []byte) (*Config, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrConfig, name, maxFileSize)
	}
	p := &parser{cfg: Defaults(), name: name}
	p.cfg.File = name
	p.parseText(name, data)
	p.finish()
	p.summarise()
	if len(p.errs) > 0 {
		return p.cfg, errors.Join(p.errs...)
	}
	return p.cfg, nil
}

// parseText parses one file's text, the main file or an included one.
func (p *parser) parseText(name string, data []byte) {
	p.total += len(data)
	if p.total > maxFileSize {
		p.addErr(fmt.Errorf("%w: %s: configuration with its includes is larger than %d bytes", ErrConfig, name, maxFileSize))
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), maxLineLen)
	line := 0
	for sc.Scan() {
		line++
		p.pos = Position{name, line}
		p.line(sc.Text())
	}
	if err := sc.Err(); err != nil {
		p.addErr(fmt.Errorf("%w: %s:%d: %v", ErrConfig, name, line+1, err))
	}
}

type parser struct {
	cfg  *Config
	name string
	pos  Position
	errs []error
	seen map[string]Position
	// problems not kept beyond maxReported: counted, reported as one line
	moreErrs, moreWarnings int
	// include state: depth of nesting, bytes read in all files, and
	// whether the current file is a sourcedir *.sources file, which may
	// hold only source lines (as in chrony).
	depth   int
	total   int
	sources bool
	// ntpd's local clock (server 127.127.1.N, fudge ... stratum N).
	ntpdLocal    *ntpdLocal
	fudgeStratum int
	// chrony's allow/deny lines, applied in order by finishAccess.
	access []access
	// ntpd's `interface ignore wildcard`.
	ignoreWildcard bool
}

// errorAt is an error for a line other than the current one.
func errorAt(pos Position, directive, msg string) error {
	return fmt.Errorf("%w: %s: %s: %s", ErrConfig, pos, directive, msg)
}

// warn records a warning for the current line: accepted, but without the
// effect it has in chrony or ntpd.
// maxReported caps the errors, and the warnings, one parse reports: a file
// of half a million bad lines (a campaign fed the keys file such a one)
// must not become a 33 MB log line, nor the memory to build it. The first
// ones say what is wrong; a count says how much more.
const maxReported = 50

func (p *parser) addErr(err error) {
	if len(p.errs) >= maxReported {
		p.moreErrs++
		return
	}
	p.errs = append(p.errs, err)
}

func (p *parser) addWarning(w Warning) {
	if len(p.cfg.Warnings) >= maxReported {
		p.moreWarnings++
		return
	}
	p.cfg.Warnings = append(p.cfg.Warnings, w)
}

// summarise adds the count of problems left out.
func (p *parser) summarise() {
	if p.moreErrs > 0 {
		p.errs = append(p.errs, fmt.Errorf("%w: %s: %d more errors not shown", ErrConfig, p.name, p.moreErrs))
	}
	if p.moreWarnings > 0 {
		p.cfg.Warnings = append(p.cfg.Warnings, Warning{Pos: Position{p.name, 0}, Directive: "(more)",
			Msg: fmt.Sprintf("%d more warnings not shown", p.moreWarnings)})
	}
}

func (p *parser) warn(directive, format string, args ...any) {
	p.addWarning(Warning{Pos: p.pos, Directive: directive, Msg: fmt.Sprintf(format, args...)})
}

// fail records an error for the current line.
func (p *parser) fail(directive, format string, args ...any) {
	p.addErr(fmt.Errorf("%w: %s: %s: %s", ErrConfig, p.pos, directive, fmt.Sprintf(format, args...)))
}

func (p *parser) line(text string) {
	if i := strings.IndexByte(text, '#'); i >= 0 {
		text = text[:i]
	}
	words := strings.Fields(text)
	if len(words) == 0 {
		return
	}
	// chrony also treats lines starting with !, ; or % as comments.
	if strings.ContainsRune("!;%", rune(words[0][0])) {
		return
	}
	name, args := strings.ToLower(words[0]), words[1:]
	if p.sources && !isSourceDirective(name) {
		p.fail(name, "only server, pool, peer and refclock lines belong in a sourcedir *.sources file")
		return
	}
	h, ok := lookupDirective(name)
	if !ok {
		if why, known := noEffect(name); known {
			p.warn(name, "%s", why)
			return
		}
		p.fail(name, "unknown directive")
		return
	}
	if h.single {
		if prev, dup := p.seen[name]; dup {
			p.fail(name, "already set at line %d", prev.Line)
			return
		}
		if p.seen == nil {
			p.seen = map[string]Position{}
		}
		p.seen[name] = p.pos
	}
	// For repeatable directives this is the last line, good enough to point
	// an operator at the directive; per-item errors name the item too.
	p.cfg.Positions[name] = p.pos
	h.fn(p, name, args)
}

func (p *parser) finish() {
	c := p.cfg
	p.finishCompat()
	if c.Port == 0 && c.NTSPort == 0 {
		p.addErr(fmt.Errorf("%w: %s: port and ntsport are both 0: nothing would be served", ErrConfig, p.name))
	}
	if (c.NTSServerCert == "") != (c.NTSServerKey == "") {
		p.addErr(fmt.Errorf("%w: %s: ntsservercert and ntsserverkey must be given together", ErrConfig, p.name))
	}
	if pos, ok := p.seen["ntskenice"]; ok && c.NTSKEIdle && c.NTSProcesses == 0 {
		p.addErr(fmt.Errorf("%w: %s: ntskenice idle needs ntsprocesses 1 or more: "+
			"NTS-KE in the daemon's own process cannot run at another scheduling policy than NTP", ErrConfig, pos))
	}
	p.finishAudit()
	p.finishLeap()
	p.finishKeyStore()
}

// finishKeyStore warns when a fleet's propagation delay is not shorter
// than its rotation interval: the fleet publishes a key only when none is
// pending, so keys then change every `delay`, not every ntsrotate, which an
// operator who set ntsrotate would not expect.
func (p *parser) finishKeyStore() {
	ks, c := p.cfg.NTSKeyStore, p.cfg
	if ks == nil || c.NTSRotate == 0 {
		return
	}
	delay := ks.Delay
	if delay == 0 {
		delay = DefaultKeyStoreDelay
	}
	if delay >= c.NTSRotate {
		p.addWarning(Warning{Pos: p.seen["ntskeystore"], Directive: "ntskeystore",
			Msg: fmt.Sprintf("delay %s is not shorter than ntsrotate %s: the fleet's keys will change every %s", delay, c.NTSRotate, delay)})
	}
}

// intArg parses one integer argument within [lo, hi].
func (p *parser) intArg(directive, what, s string, lo, hi int) (int, bool) {
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		p.fail(directive, "%s must be an integer %d..%d, got %q", what, lo, hi, s)
		return 0, false
	}
	return v, true
}

// keyIDArg parses a key ID, 1..2^32-1 (chrony's and ntpd's IDs are 32-bit; 0 means
// no key). It is an int64 because an int cannot hold the top of the range on 32-bit
// platforms; the message is intArg's.
func (p *parser) keyIDArg(directive, s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 || v > math.MaxUint32 {
		p.fail(directive, "key ID must be an integer 1..%d, got %q", uint32(math.MaxUint32), s)
		return 0, false
	}
	return v, true
}

// secondsArg parses a non-negative number of seconds (fractions allowed).
func (p *parser) secondsArg(directive, s string, lo, hi float64) (time.Duration, bool) {
	v, err := strconv.ParseFloat(s, 64)
	// NaN compares false with everything, so it would pass the range check
	// and then become whatever the conversion makes of it (campaign:
	// `maxdistance nan` and `holdover nan` passed -check-config).
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
		p.fail(directive, "must be a number of seconds %g..%g, got %q", lo, hi, s)
		return 0, false
	}
	return time.Duration(v * float64(time.Second)), true
}

// exactly checks the argument count.
func (p *parser) exactly(directive string, args []string, n int) bool {
	if len(args) != n {
		p.fail(directive, "takes %d argument(s), got %d", n, len(args))
		return false
	}
	return true
}

func (p *parser) addr(directive, s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		p.fail(directive, "not an IP address: %q", s)
		return netip.Addr{}, false
	}
	return a, true
}
