package upstream

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"time"

	"timegate/ntp"
)

// SourceConfig describes one upstream association.
type SourceConfig struct {
	// ID identifies the source to selection (Candidate.ID); not 0.
	ID uint64
	// RefID is what the gateway serves as reference ID while this source is the system
	// peer: RefIDForAddr of its NTP address. HandleRekey replaces it, since NTS-KE may
	// name another NTP server (RFC 8915 §4.1.7).
	RefID uint32
	// MinPoll and MaxPoll bound the poll exponent (log2 seconds, -7..17).
	MinPoll, MaxPoll int8
	// IBurst starts with a burst of polls IBurstGap apart, to be selectable in seconds.
	IBurst bool
	// Prefer, Trust and Require are passed to selection (Candidate).
	Prefer, Trust, Require bool
	// Auth authenticates the association; nil with NTS set means "no session yet": the
	// first timer asks for Rekey. nil without NTS means NoAuth.
	Auth Auth
	// NTS marks an association that must always have an NTS session: it never sends a
	// request without one.
	NTS bool
	// Precision is the local clock's precision, added to every sample's dispersion.
	Precision time.Duration
	// Rand supplies request nonces, NTS Unique Identifiers and back-off jitter; nil means
	// crypto/rand. The nonce is what makes a reply unforgeable off-path (RFC 9109).
	Rand io.Reader
	// MaxDelay, when not zero, makes a reply with a longer round trip count as reachable
	// but unusable, as chrony's maxdelay: a sample delayed that much (a congested path,
	// a delay attack) carries a large asymmetry error.
	MaxDelay time.Duration
	// Interleaved asks the server for interleaved mode (RFC 9769, chrony's xleave):
	// each reply then carries the time the server's previous reply really left, and
	// the samples use it. A server that answers in basic mode is used in basic mode.
	Interleaved bool
}

// SourceStats counts what a source did with the datagrams it was given.
type SourceStats struct {
	Sent     uint64 // requests
	Accepted uint64 // valid, authentic replies used as samples
	// Unexpected: no request outstanding (a duplicate or replay of an answered one, or a
	// straggler after the next poll).
	Unexpected uint64
	// Bogus: unparsable, not mode 4, wrong version, or the origin timestamp is not our
	// nonce (RFC 5905 §8 "bogus"): forged or stale.
	Bogus uint64
	// BadAuth: the origin matched but the authentication did not.
	BadAuth uint64
	// Kisses acted upon, and kisses ignored because an authenticated association got them
	// unauthenticated.
	Kisses, IgnoredKisses uint64
	// Unusable: authentic but no sample (unsynchronised server, zero transmit timestamp,
	// negative delay).
	Unusable uint64
	// Rekeys requested and NTS-KE failures reported.
	Rekeys, KEFailures uint64
	// Interleaved counts the accepted samples that came in interleaved mode.
	Interleaved uint64
}

// request is the one outstanding request. Only one is kept: a reply to an older one
// fails the origin test, and a second reply to this one finds it already answered.
type request struct {
	nonce ntp.Time64
	// rxNonce is the receive timestamp of an interleaved request, which an
	// interleaved reply echoes as its origin; 0 for a basic request.
	rxNonce ntp.Time64
	token   []byte
	// version is the request's NTP version, which the reply must repeat: 3 for
	// keys whose digest an NTPv4 MAC cannot carry whole.
	version uint8
	active  bool
}

// Source is the poll state machine of one upstream association (RFC 5905 §13 poll
// process, §8 packet tests, §7.4 kisses; RFC 8915 §5.7 for NTS). It is pure: the edge
// passes every timer expiry, datagram and NTS-KE outcome in, with the local time
// (SoftClock.Local) it happened, and carries out the returned actions. A Source is not
// safe for concurrent use.
type Source struct {
	cfg    SourceConfig
	auth   Auth
	filter Filter
	poll   int8 // current poll exponent
	score  int  // poll adaptation: positive stable, negative noisy (see accept)
	hist   [2]histPoint
	reach  uint8
	burst  int // iburst polls left
	req    request
	// lastXmt is the transmit timestamp of the last accepted reply: a reply repeating it
	// is a duplicate however it got past the origin test (RFC 5905 §8).
	lastXmt ntp.Time64
	// unsynced: the latest authentic reply said the server is unsynchronised, so its
	// older samples must not be selected either.
	unsynced bool
	stopped  string       // non-empty: demobilized, and why
	lastKiss ntp.KissCode // the latest kiss acted upon

	rekeying bool // a Rekey is out and its HandleRekey not yet in
	keyFails int  // NTS-KE failures, and rekeys with no authentic reply in between
	stats    SourceStats
	xl       xlState
}

// NewSource returns an association in its initial state; the edge calls HandleTimer to
// start it.
func NewSource(cfg SourceConfig) *Source {
	cfg.MinPoll = clampPollExp(cfg.MinPoll)
	cfg.MaxPoll = max(clampPollExp(cfg.MaxPoll), cfg.MinPoll)
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	auth := cfg.Auth
	if auth == nil && !cfg.NTS {
		auth = NoAuth{}
	}
	s := &Source{cfg: cfg, auth: auth, poll: cfg.MinPoll}
	s.filter.Precision = cfg.Precision
	if cfg.IBurst {
		s.burst = IBurstCount
	}
	return s
}

// HandleTimer is the poll process: the timer the source asked for expired at local time
// now. It counts an unanswered request as lost, then sends the next one (or asks for
// NTS-KE when the association has no keys).
func (s *Source) HandleTimer(now time.Time) []Action {
	if s.stopped != "" {
		return nil
	}
	s.shiftReach(now)
	if s.auth == nil {
		if s.rekeying {
			return nil
		}
		s.rekeying = true
		s.stats.Rekeys++
		return []Action{Rekey{}}
	}
	ts, err := s.stamps()
	if err != nil {
		return []Action{WakeAfter{s.interval()}}
	}
	pkt, token, err := s.auth.Request(nil, ts, s.poll, s.cfg.Rand)
	if errors.Is(err, ErrNeedKey) {
		return s.needKey()
	}
	if err != nil {
		return []Action{WakeAfter{s.interval()}}
	}
	s.req = request{nonce: ts.Transmit, rxNonce: ts.Receive, token: token, version: pkt[0] >> 3 & 7, active: true}
	s.stats.Sent++
	s.xl.sent++
	next := s.nextInterval()
	return []Action{Send{Packet: pkt, Timeout: min(next, MaxReplyWait)}, WakeAfter{next}}
}

// shiftReach opens a new slot in the reach register for the poll about to happen and
// settles the previous one: an unanswered request is a loss, and three polls in a row
// without an answer push a dummy sample into the filter (RFC 5905 §13, poll()).
func (s *Source) shiftReach(now time.Time) {
	if s.req.active {
		s.req = request{}
		s.lost()
	}
	s.reach <<= 1
	if s.reach&7 == 0 && s.stats.Accepted > 0 {
		s.filter.Timeout(now)
	}
}

// nonce draws the transmit timestamp of a request: 64 random bits, never the clock
// (RFC 9109 §3, as ntp.ClientRequest explains), and never 0, which the origin test
// rejects as "no request".
func (s *Source) nonce() (ntp.Time64, error) {
	var b [8]byte
	for {
		if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
			return 0, err
		}
		if n := ntp.Time64(binary.BigEndian.Uint64(b[:])); n != 0 {
			return n, nil
		}
	}
}

// HandleResponse takes one datagram received at local time rx on the socket of the
// request that left at local time sent. Everything that does not pass the packet tests
// and the authentication leaves the source exactly as it was.
func (s *Source) HandleResponse(reply []byte, sent, rx time.Time) []Action {
	if s.stopped != "" || !s.req.active {
		s.stats.Unexpected++
		return nil
	}
	smp, interleaved, err := s.check(reply, sent, rx)
	switch {
	case errors.Is(err, ntp.ErrKiss):
		return s.kiss(rx, reply, &smp.Header)
	case err != nil && !usableError(err):
		s.stats.Bogus++
		return nil
	case smp.Header.Transmit == s.lastXmt:
		s.stats.Unexpected++
		return nil
	}
	if s.auth.Check(reply, s.req.token) != AuthOK {
		s.stats.BadAuth++
		return nil
	}
	s.req = request{}
	s.lastXmt = smp.Header.Transmit
	s.keyFails = 0
	prev := s.xl
	if s.cfg.Interleaved {
		s.xl = xlState{serverRx: smp.Header.Receive, t1: sent, t4: rx, sampled: !interleaved, last: interleaved}
	}
	if err != nil {
		s.stats.Unusable++
		if errors.Is(err, ntp.ErrUnsynced) || errors.Is(err, ntp.ErrBadStratum) {
			// The server answers but has no time to give: reachable, not selectable.
			s.reach |= 1
			s.unsynced = true
		}
		return nil
	}
	s.reach |= 1
	s.unsynced = false
	if interleaved {
		if prev.sampled {
			// The exchange this reply completes already gave a basic sample.
			return nil
		}
		sent, rx = prev.t1, prev.t4
	}
	if s.cfg.MaxDelay > 0 && smp.Delay > s.cfg.MaxDelay {
		s.stats.Unusable++
		return nil
	}
	s.stats.Accepted++
	if interleaved {
		s.stats.Interleaved++
	}
	s.accept(toSample(&smp, sent, rx, s.cfg.Precision))
	return nil
}

// usableError reports whether a CheckReply error came after the origin test passed, so
// that the reply is ours and only its content is unusable.
func usableError(err error) bool {
	return errors.Is(err, ntp.ErrZeroTransmit) || errors.Is(err, ntp.ErrUnsynced) ||
		errors.Is(err, ntp.ErrBadStratum) || errors.Is(err, ntp.ErrNegativeDelay)
}

// toSample turns a checked exchange into a filter sample (RFC 5905 §8): its dispersion
// is the two precisions plus PHI times the round trip.
func toSample(smp *ntp.Sample, sent, rx time.Time, precision time.Duration) Sample {
	h := &smp.Header
	return Sample{
		Time:           rx,
		Offset:         smp.Offset,
		Delay:          smp.Delay,
		Dispersion:     precisionDur(h.Precision) + precision + dur(PHI*rx.Sub(sent).Seconds()),
		RootDelay:      h.RootDelay.Duration(),
		RootDispersion: h.RootDispersion.Duration(),
		Stratum:        h.Stratum,
		Leap:           Leap(h.Leap),
	}
}

// precisionDur converts a log2-seconds precision to a duration, bounded to a sane range
// so that a hostile header cannot overflow it.
func precisionDur(p int8) time.Duration {
	p = min(max(p, -30), 0)
	return time.Duration(float64(time.Second) / float64(uint64(1)<<uint(-p)))
}

// kiss handles a Kiss-o'-Death whose origin matched our request (RFC 5905 §7.4). An
// authenticated association acts only on an authentic kiss, or on an NTS NAK that echoes
// our Unique Identifier (RFC 8915 §5.7); anything else could come from anyone who saw
// the request, and is ignored, leaving the request outstanding.
func (s *Source) kiss(now time.Time, reply []byte, h *ntp.Header) []Action {
	code := ntp.KissCode(h.RefID)
	v := s.auth.Check(reply, s.req.token)
	trusted := v == AuthOK || (v == AuthNAK && code == ntp.KissNTSN)
	if s.auth.Authenticated() && !trusted {
		s.stats.IgnoredKisses++
		return nil
	}
	s.stats.Kisses++
	s.lastKiss = code
	s.req = request{}
	switch code {
	case ntp.KissRATE:
		return s.rateKiss(h.Poll)
	case ntp.KissDENY, ntp.KissRSTR:
		s.stopped = "server sent " + code.String() + " kiss (access denied)"
		return []Action{Demobilize{Reason: s.stopped}}
	case ntp.KissNTSN:
		if !s.cfg.NTS {
			return nil
		}
		return s.needKey()
	}
	// RFC 5905 §7.4: other codes carry no instruction; the kiss is simply no sample.
	return nil
}

// rateKiss backs off after a RATE kiss (RFC 5905 §7.4: "reduce its polling rate"): the
// poll interval at least doubles, and goes to the server's advertised poll if that is
// longer, within maxpoll. Any burst is over.
func (s *Source) rateKiss(serverPoll int8) []Action {
	s.poll = min(max(s.poll+1, clampPollExp(serverPoll)), s.cfg.MaxPoll)
	s.burst, s.score = 0, 0
	return []Action{WakeAfter{PollInterval(s.poll)}}
}

// needKey drops the NTS session and asks for a new one, at once the first time, after a
// back-off while NTS-KE keeps failing or keeps yielding keys that earn no authentic
// reply (a server that NAKs every cookie must not make us hammer its NTS-KE port).
func (s *Source) needKey() []Action {
	s.auth = nil
	if s.keyFails == 0 {
		s.keyFails++
		s.rekeying = true
		s.stats.Rekeys++
		return []Action{Rekey{}}
	}
	s.keyFails++
	return []Action{WakeAfter{s.keBackoff()}}
}

// HandleRekey reports the outcome of the NTS-KE session a Rekey asked for: on success
// the new session and the reference ID of the NTP server it named, and the first
// request goes out at once; on failure the next attempt waits an exponential back-off
// with jitter.
func (s *Source) HandleRekey(now time.Time, auth Auth, refID uint32, err error) []Action {
	if !s.rekeying || s.stopped != "" {
		return nil
	}
	s.rekeying = false
	if err != nil || auth == nil {
		s.stats.KEFailures++
		s.keyFails++
		return []Action{WakeAfter{s.keBackoff()}}
	}
	// A new session may reach another NTP server (RFC 8915 §4.1.7): nothing of the
	// old one's interleaved exchange carries over.
	s.auth, s.cfg.RefID, s.req, s.xl = auth, refID, request{}, xlState{}
	ts, err := s.stamps()
	if err != nil {
		return []Action{WakeAfter{s.interval()}}
	}
	pkt, token, err := s.auth.Request(nil, ts, s.poll, s.cfg.Rand)
	if err != nil {
		s.auth = nil
		s.keyFails++
		return []Action{WakeAfter{s.keBackoff()}}
	}
	s.req = request{nonce: ts.Transmit, rxNonce: ts.Receive, token: token, version: pkt[0] >> 3 & 7, active: true}
	s.stats.Sent++
	s.xl.sent++
	next := s.nextInterval()
	return []Action{Send{Packet: pkt, Timeout: min(next, MaxReplyWait)}, WakeAfter{next}}
}

// Candidate returns the source as selection sees it: only while it is running,
// reachable, not saying it is unsynchronised, and its filter has a sample.
func (s *Source) Candidate() (Candidate, bool) {
	if s.stopped != "" || s.reach == 0 || s.unsynced {
		return Candidate{}, false
	}
	c, ok := s.filter.Candidate()
	if !ok {
		return Candidate{}, false
	}
	c.ID, c.RefID, c.Prefer, c.Trust, c.Require = s.cfg.ID, s.cfg.RefID, s.cfg.Prefer, s.cfg.Trust, s.cfg.Require
	return c, true
}

// Authenticated reports whether the association authenticates its replies (NTS or a
// symmetric key): what authselectmode judges.
func (s *Source) Authenticated() bool {
	return s.cfg.NTS || (s.auth != nil && s.auth.Authenticated())
}

// ID returns the configured ID.
func (s *Source) ID() uint64 { return s.cfg.ID }

// Reach returns the 8-bit reach register (RFC 5905 §13): bit 0 is the latest poll.
func (s *Source) Reach() uint8 { return s.reach }

// Poll returns the current poll exponent.
func (s *Source) Poll() int8 { return s.poll }

// Stopped returns why the source was demobilized, or "".
func (s *Source) Stopped() string { return s.stopped }

// Stats returns the counters.
func (s *Source) Stats() SourceStats { return s.stats }

// SetSkew tells the clock filter the local clock's frequency uncertainty
// (SoftClock.SampleSkew), which ages its samples; it applies from the next sample.
func (s *Source) SetSkew(skew float64) { s.filter.Skew = skew }

// LastSample returns the latest sample the filter took (zero before the first): what
// measurements.log records.
func (s *Source) LastSample() Sample { return s.filter.hdr }

// FilterStats returns the clock filter output; ok is false before the first sample.
func (s *Source) FilterStats() (st Stats, ok bool) { return s.filter.Stats() }

// Awaiting reports whether a request is outstanding: the edge keeps the request's socket
// open while it is, and closes it once the answer came.
func (s *Source) Awaiting() bool { return s.req.active }

// Cookies is the number of NTS cookies left, or -1 for a source that does not use NTS
// or has no session yet.
func (s *Source) Cookies() int {
	if a, ok := s.auth.(NTSAuth); ok && a.Session != nil {
		return a.Session.Cookies()
	}
	return -1
}

// KEFailing reports how many NTS-KE sessions in a row failed (or gave cookies that got
// no authentic reply); 0 when the last one worked.
func (s *Source) KEFailing() int { return s.keyFails }

// ServerUnsynchronised reports whether the latest authentic reply said the server is
// unsynchronised (leap 3 or stratum 0/16), which keeps the source out of selection.
func (s *Source) ServerUnsynchronised() bool { return s.unsynced }

// LastKiss is the code of the latest kiss the source acted upon (0 before any): what the
// edge records when Stats().Kisses moves.
func (s *Source) LastKiss() ntp.KissCode { return s.lastKiss }
