package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultWatchInterval is the poll interval Watch uses when given none:
// certificates are renewed days before they expire, so seconds of delay
// cost nothing, and a stat of two files is cheap.
const DefaultWatchInterval = 5 * time.Second

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Now returns the current time, used for the validity check and
	// DaysToExpiry. nil means time.Now.
	Now func() time.Time
	// KeyOwners may own the key file besides root and the effective user
	// (secfile.ReadPrivateOwned): the user a root start drops to.
	KeyOwners []int
}

// Store serves the current certificate of a certificate and key file pair
// and replaces it when the files change. Its methods are safe for
// concurrent use; GetCertificate takes no lock.
type Store struct {
	certFile, keyFile string
	now               func() time.Time
	owners            []int

	mu  sync.Mutex // serialises reloads (Watch and SIGHUP may race)
	cur atomic.Pointer[served]
}

// served is an immutable snapshot: the pair handed to handshakes and the
// identity of the files it was read from.
type served struct {
	cert  *tls.Certificate
	stamp pairStamp
}

// Event reports the outcome of a reload Watch attempted because the files
// changed.
type Event struct {
	// Changed is set when a new pair was swapped in.
	Changed bool
	// Err is set when the files changed but the pair on disk was refused;
	// the previous pair is still served. A failure is reported once per
	// state of the files, though it is retried at every poll.
	Err error
	// Info describes the pair served after the event.
	Info Info
}

// NewStore loads certFile and keyFile with LoadFiles and fails if they do
// not pass every check: the daemon should not start without a certificate.
func NewStore(certFile, keyFile string, opts Options) (*Store, error) {
	s := &Store{certFile: certFile, keyFile: keyFile, now: opts.Now, owners: opts.KeyOwners}
	if s.now == nil {
		s.now = time.Now
	}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// GetCertificate returns the current pair; set it as
// tls.Config.GetCertificate. A handshake keeps the pair it got even if a
// reload swaps another in meanwhile, which is why a swap never fails one.
func (s *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load().cert, nil
}

// Info describes the pair served now, with DaysToExpiry counted from now.
func (s *Store) Info() Info {
	return InfoOf(s.cur.Load().cert, s.now())
}

// Reload reads both files again and swaps the new pair in if, and only if,
// it passes every check; otherwise the previous pair stays served and the
// error says why. changed reports whether the pair served differs from
// before (touching the files without changing them is no change).
//
// An operator who replaces the certificate and then the key, not both at
// once, leaves a moment where the new certificate sits beside the old key:
// a reload then fails with ErrKeyMismatch and serves the old pair, and
// Watch retries at every poll until the key catches up.
func (s *Store) Reload() (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *Store) reloadLocked() (bool, error) {
	// Stat before reading: if a file changes during the read, the stamp
	// kept is the older one and the next poll reads again.
	st := statPair(s.certFile, s.keyFile)
	c, err := LoadFilesOwned(s.certFile, s.keyFile, s.now(), s.owners...)
	if err != nil {
		return false, err
	}
	old := s.cur.Load()
	if old != nil && samePair(old.cert, c) {
		s.cur.Store(&served{cert: old.cert, stamp: st})
		return false, nil
	}
	s.cur.Store(&served{cert: c, stamp: st})
	return true, nil
}

// Watch polls the files every interval (DefaultWatchInterval if interval
// is not positive) and reloads when their identity, size, mode or
// modification time differ from those of the pair served. It blocks until
// ctx is done; run it in a goroutine. onEvent, which may be nil, is called
// from Watch's goroutine after every reload that swapped a pair, failed, or
// recovered from a failure.
func (s *Store) Watch(ctx context.Context, interval time.Duration, onEvent func(Event)) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var w watchState
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ev, report := s.poll(&w); report && onEvent != nil {
			onEvent(ev)
		}
	}
}

// watchState remembers the last failure reported so that a broken pair
// left on disk is reported once, not at every poll.
type watchState struct {
	failing bool
	failed  pairStamp
}

func (s *Store) poll(w *watchState) (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := statPair(s.certFile, s.keyFile)
	if st.same(s.cur.Load().stamp) {
		// The files are back as they were when the served pair was read
		// (say, a loosened key mode was restored): nothing to reload, but
		// a reported failure is over.
		if !w.failing {
			return Event{}, false
		}
		w.failing = false
		return Event{Info: InfoOf(s.cur.Load().cert, s.now())}, true
	}
	changed, err := s.reloadLocked()
	ev := Event{Changed: changed, Err: err, Info: InfoOf(s.cur.Load().cert, s.now())}
	if err != nil {
		report := !w.failing || !st.sameFailure(w.failed)
		w.failing, w.failed = true, st
		return ev, report
	}
	recovered := w.failing
	w.failing = false
	return ev, changed || recovered
}

// pairStamp identifies the state of both files. A nil FileInfo (the file
// could not be stat'ed, e.g. mid-replacement) never equals anything.
type pairStamp struct{ cert, key os.FileInfo }

func statPair(certFile, keyFile string) pairStamp {
	var p pairStamp
	p.cert, _ = os.Stat(certFile)
	p.key, _ = os.Stat(keyFile)
	return p
}

func (p pairStamp) same(q pairStamp) bool {
	return sameFile(p.cert, q.cert) && sameFile(p.key, q.key)
}

// sameFailure is same, except that a file missing in both counts as the
// same state, so a deleted file is reported once, not at every poll.
func (p pairStamp) sameFailure(q pairStamp) bool {
	return sameOrBothMissing(p.cert, q.cert) && sameOrBothMissing(p.key, q.key)
}

func sameOrBothMissing(a, b os.FileInfo) bool {
	return a == nil && b == nil || sameFile(a, b)
}

// sameFile compares the inode (a rename over the file, or certbot moving a
// symlink, changes it), size, mode (a chmod that fixes a refused key) and
// modification time (an in-place rewrite).
func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() &&
		a.Mode() == b.Mode() && a.ModTime().Equal(b.ModTime())
}

func samePair(a, b *tls.Certificate) bool {
	if !slices.EqualFunc(a.Certificate, b.Certificate, bytes.Equal) {
		return false
	}
	k, ok := a.PrivateKey.(interface{ Equal(crypto.PrivateKey) bool })
	return ok && k.Equal(b.PrivateKey)
}
