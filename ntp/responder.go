package ntp

import (
	"encoding/binary"
	"net/netip"
	"time"

	"timegate/leap"
)

// ServedState is what the server says about its own clock. The upstream
// engine publishes a new value whenever its estimate changes; the responder
// reads it per request.
type ServedState struct {
	Leap           Leap
	Stratum        uint8 // 1..15 when synchronised; 16 when not
	RefID          uint32
	RootDelay      time.Duration
	RootDispersion time.Duration
	RefTime        time.Time
	Precision      int8
	// Served time = system time + Offset + Freq·(system time − Base): the
	// gateway's software clock corrects the system clock without touching it.
	Offset time.Duration
	Freq   float64
	Base   time.Time
	// LeapAt, when set, is a leap second being taken up: from LeapAt (in
	// the timescale before the leap) served time moves by −LeapSec seconds
	// along LeapRamp, and the leap indicator changes (see Indicator). The
	// check is made per packet, so the step falls on the exact second
	// whenever the state was published.
	LeapAt   time.Time
	LeapSec  int8
	LeapRamp leap.Ramp
	// LeapBase is what the soft clock's law already holds of the leap:
	// once the engine has shifted the soft clock by the leap, LeapSec
	// seconds, added back here so that the ramp alone shapes served time.
	LeapBase time.Duration
	// LeapQuiet: no LI 3 while the leap is in progress (smoothed time,
	// where nothing steps).
	LeapQuiet bool
}

// Unsynchronised is the state served before any time source is usable: leap 3
// and stratum 16 tell every client not to trust the time (RFC 5905 §7.3).
// The reference ID reads "INIT" as ntpd's does before first synchronisation,
// so `ntpq`/`chronyc ntpdata`/`gatectl query` show why at a glance.
func Unsynchronised(precision int8) *ServedState {
	return &ServedState{Leap: LeapUnsync, Stratum: 16, RefID: RefIDInit, Precision: precision}
}

// RefIDInit is the ASCII reference ID "INIT".
const RefIDInit = 'I'<<24 | 'N'<<16 | 'I'<<8 | 'T'

// Serve maps a system-clock reading to served time.
func (s *ServedState) Serve(sys time.Time) time.Time {
	t := sys.Add(s.Offset)
	if s.Freq != 0 && !s.Base.IsZero() {
		t = t.Add(time.Duration(float64(sys.Sub(s.Base)) * s.Freq))
	}
	if s.LeapAt.IsZero() {
		return t
	}
	t = t.Add(s.LeapBase)
	if dt := t.Sub(s.LeapAt); dt >= 0 {
		t = t.Add(time.Duration(-float64(s.LeapSec) * s.LeapRamp.Fraction(dt) * float64(time.Second)))
	}
	return t
}

// Time64 is Time64From(s.Serve(sys)), the served time as an NTP timestamp,
// without time.Time arithmetic outside a leap: every reply computes it
// twice (receive and transmit timestamps), and two time.Time.Add calls per
// conversion were the largest single cost of a plain reply after the
// kernel's (BENCHMARKS.md, "Plain: what the worker loop costs"). The
// result is the same to the nanosecond: the offsets are added to seconds
// and nanoseconds with the carry time.Time.Add makes, and the frequency
// term is the same float64 product of the same sys.Sub.
func (s *ServedState) Time64(sys time.Time) Time64 {
	if !s.LeapAt.IsZero() {
		return Time64From(s.Serve(sys))
	}
	secs, nanos := sys.Unix(), int64(sys.Nanosecond())
	secs, nanos = addNanos(secs, nanos, s.Offset)
	if s.Freq != 0 && !s.Base.IsZero() {
		secs, nanos = addNanos(secs, nanos, time.Duration(float64(sys.Sub(s.Base))*s.Freq))
	}
	return time64(secs, nanos)
}

// addNanos adds d to a time held as Unix seconds and nanoseconds in
// [0, 1e9), keeping the nanoseconds in range, as time.Time.Add does.
func addNanos(secs, nanos int64, d time.Duration) (int64, int64) {
	secs += int64(d / time.Second)
	nanos += int64(d % time.Second)
	switch {
	case nanos >= 1e9:
		secs++
		nanos -= 1e9
	case nanos < 0:
		secs--
		nanos += 1e9
	}
	return secs, nanos
}

// Indicator returns the leap indicator to serve at system time sys: Leap
// until the leap second, then, as chronyd does, 3 for leap.InProgress (a
// client must not take a sample across the second; not for smoothed time),
// and none after it.
func (s *ServedState) Indicator(sys time.Time) Leap {
	if s.LeapAt.IsZero() || s.Leap == LeapUnsync {
		return s.Leap
	}
	t := sys.Add(s.Offset + s.LeapBase)
	if s.Freq != 0 && !s.Base.IsZero() {
		t = t.Add(time.Duration(float64(sys.Sub(s.Base)) * s.Freq))
	}
	switch dt := t.Sub(s.LeapAt); {
	case dt < 0:
		return s.Leap
	case dt < leap.InProgress && !s.LeapQuiet:
		return LeapUnsync
	}
	return LeapNone
}

// Admission is the access decision for one request, made before any
// cryptography so that floods are shed cheaply.
type Admission struct {
	Action Action // ActionReply, ActionDrop or ActionKoD
	Kiss   KissCode
	Reason Reason
	Leak   bool
	// NoPeer: the matching rule has ntpd's nopeer, so a symmetric-active
	// (mode 1) request is refused; a mode 3 request is unaffected.
	NoPeer bool
}

// Gate decides whether a client gets time: access policy and rate limiting.
// auth is what the request claims; a false claim fails verification later.
type Gate interface {
	Admit(client netip.Addr, now time.Time, auth AuthKind) Admission
}

// MACKey computes and checks the MAC of a symmetric key (RFC 8573).
type MACKey interface {
	// MACLen is the digest length a packet of NTP version vn carries:
	// digests longer than 20 octets are truncated to 20 in NTPv4 (RFC 7822
	// §7.5 leaves no room for more) and carried whole in NTPv3, as chrony
	// does.
	MACLen(vn uint8) int
	// SumTrunc appends the first n octets of the digest of msg to dst.
	SumTrunc(dst, msg []byte, n int) []byte
	// Verify checks mac, the whole digest or its NTPv4 truncation.
	Verify(msg, mac []byte) bool
}

// KeyLookup finds a symmetric key by ID.
type KeyLookup func(id uint32) (MACKey, bool)

// NTSHandler authenticates NTS requests and completes their replies (RFC
// 8915 §5), in one call per request: the NTS state of a request (its
// cookie's keys, the cookies it asks for) never leaves the handler.
type NTSHandler interface {
	// Respond checks the NTS request req, whose NTS fields Parse found (f),
	// and completes its reply. reply holds the reply header with every
	// field but the transmit timestamp, which the handler writes with
	// tx.Stamp once, after all its work that the timestamp does not enter
	// (key schedules, new cookies, nonces) and before the Authenticator
	// that covers the header: whatever runs after the clock is read delays
	// the reply past its own transmit timestamp, an offset error every
	// client sees. The reply must not grow beyond limit.
	//
	// It returns the reply and ReasonOK; or, for a well-formed request
	// whose cookie does not open, an NTS NAK written over reply (RFC 8915
	// §5.7) and ReasonBadCookie; or nil and the reason to drop.
	Respond(reply, req []byte, f NTSFields, limit int, tx Stamper) ([]byte, Reason)
}

// NTSBatchHandler is an NTSHandler that answers several requests in one
// call, so that the AES work of independent requests can overlap (an edge
// that receives datagrams in batches has them at hand).
type NTSBatchHandler interface {
	NTSHandler
	// RespondBatch answers each job exactly as Respond(job.Reply, job.Req,
	// job.Fields, job.Limit, job.Tx) would, setting job.Out and
	// job.Reason: one job's request never changes another's answer. Each
	// job's transmit timestamp is still written just before its own
	// Authenticator.
	RespondBatch(jobs []NTSJob)
}

// NTSJob is one NTS request prepared by Responder.RespondOrDefer and
// answered by NTSBatchHandler.RespondBatch (through Responder.RespondNTS).
type NTSJob struct {
	Reply  []byte // the reply header, as Respond's reply
	Req    []byte
	Fields NTSFields
	Limit  int
	Tx     Stamper

	Out    []byte // set by RespondBatch: Respond's reply
	Reason Reason // set by RespondBatch: Respond's reason

	// The responder's state for completing the verdict.
	adm Admission
	v   Verdict
}

// Stamper writes a reply's transmit timestamp (T3, RFC 5905 §7.3). Respond
// hands one to NTSHandler.Respond, so that the clock is read as late as the
// authentication allows rather than before it.
//
// The delay that remains after the reading (the final AEAD pass, then the
// send system call) is not added to T3 as an estimate: classic ntpd once
// kept such an "authdelay" (the least of the last two measured delays), but
// an estimate is wrong by its own jitter on every packet, and keeping it
// would need state shared between requests, which Respond does not have.
// We keep that delay small instead and leave exact transmit times to what
// can measure them (kernel or hardware transmit timestamps, interleaved
// mode), as chrony does.
type Stamper struct {
	state *ServedState // nil for a kiss, whose transmit timestamp stays zero
	now   func() time.Time
	lead  time.Duration // added to the clock read (RespondLead)
	// For a request that may be interleaved (RFC 9769): the table that
	// holds our earlier replies' transmit times, the client's address and
	// the request's origin and receive timestamps. xl is nil otherwise.
	xl              TxTable
	client          netip.Addr
	origin, receive Time64
}

// Stamp writes the transmit timestamp of header, which starts at the
// reply's first octet: the served time now, or in interleaved mode the
// time our previous reply to this client really left, with the origin
// timestamp turned to the request's receive timestamp (RFC 9769). The
// entry is looked up here, after the request's authentication was checked,
// so that a forged request cannot use it up. For a kiss, and for the zero
// Stamper, it writes nothing.
func (s *Stamper) Stamp(header []byte) {
	if s.state == nil {
		return
	}
	if s.xl != nil && s.interleave(header) {
		return
	}
	PutTransmit(header, s.state.Time64(s.sys().Add(s.lead))&^1)
}

func (s *Stamper) sys() time.Time {
	if s.now == nil {
		return time.Now()
	}
	return s.now()
}

// Responder answers client requests. Its fields are set once; to change
// configuration build a new Responder and swap it in atomically.
type Responder struct {
	// State returns the current served state. Required.
	State func() *ServedState
	// Now reads the system clock for the transmit timestamp; nil = time.Now.
	Now func() time.Time
	// Gate decides access; nil serves everyone.
	Gate Gate
	// Keys finds symmetric keys; nil = keyed requests are dropped.
	Keys KeyLookup
	// NTS handles NTS requests; nil = NTS requests are dropped.
	NTS NTSHandler
	// Interleave, when set, serves interleaved mode (RFC 9769) to clients
	// that ask for it (chrony's xleave), plain, keyed and NTS alike; nil =
	// basic mode only.
	Interleave TxTable
	// EdgeRestamps says the edge writes the transmit timestamp of every
	// Restampable reply again just before it sends it (Restamp), as the
	// batching worker does. Respond then reads no clock for such a reply
	// (a clock read and a served-time conversion, about a tenth of a plain
	// reply's user-space cost) and writes its receive timestamp there
	// instead, rounded up to a transmit mark: a reply that left without its
	// restamp would carry a transmit time early by the server's processing
	// time, never a wrong one. False: Respond stamps every reply itself.
	EdgeRestamps bool
}

// Restamp writes the transmit timestamp of reply (a reply Respond made
// whose Verdict is Restampable) again, from sys, the system clock read just
// before the send (read with Clock). A batching edge builds every reply of a batch before one
// sendmmsg: the first reply's T3 would otherwise be older than the moment
// it leaves by the whole batch's work, which a client sees as a shorter
// return path and so as an offset of half that.
func (r *Responder) Restamp(reply []byte, sys time.Time) {
	if len(reply) < HeaderLen {
		return
	}
	PutTransmit(reply[:HeaderLen], r.State().Time64(sys)&^1)
}

// Clock reads the clock transmit timestamps come from: Now, or the
// system clock.
func (r *Responder) Clock() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Respond answers one request received from client at rx (system clock),
// writing the reply into dst. The reply is never longer than req, nor than
// cap(dst): a reply that would not fit is not sent, so the gateway cannot
// amplify. Respond does no I/O, starts no goroutines and does not log.
func (r *Responder) Respond(dst, req []byte, client netip.AddrPort, rx time.Time) ([]byte, Verdict) {
	reply, v, _ := r.respond(dst, req, client, rx, 0, nil)
	return reply, v
}

// RespondLead is Respond for an edge that knows how long its replies take
// from the clock read for their transmit timestamp to the device: lead is
// added to that read, so that a basic-mode transmit timestamp says when
// the reply left rather than when it was stamped (the edge learns lead
// from kernel transmit stamps, see udpserve's txlead.go). Interleaved
// replies carry the kernel's own stamp and are not moved.
func (r *Responder) RespondLead(dst, req []byte, client netip.AddrPort, rx time.Time, lead time.Duration) ([]byte, Verdict) {
	reply, v, _ := r.respond(dst, req, client, rx, lead, nil)
	return reply, v
}

// RespondOrDefer is RespondLead, except for an NTS request when the NTS
// handler answers batches (NTSBatchHandler): everything before the NTS
// work (parse, gate, reply header) is done, the request is prepared in job
// and deferred is true. The caller collects such jobs and answers them
// with RespondNTS; until then job aliases dst and req.
func (r *Responder) RespondOrDefer(dst, req []byte, client netip.AddrPort, rx time.Time, lead time.Duration, job *NTSJob) (_ []byte, _ Verdict, deferred bool) {
	return r.respond(dst, req, client, rx, lead, job)
}

// RespondNTS answers the jobs r.RespondOrDefer deferred (this Responder's:
// its NTS handler answers them), in one call to the NTS handler, and then
// each job's reply and verdict are what Respond would have returned for
// its request: see NTSResult.
func (r *Responder) RespondNTS(jobs []NTSJob) {
	if len(jobs) == 0 {
		return
	}
	r.NTS.(NTSBatchHandler).RespondBatch(jobs)
}

// NTSResult is the reply and verdict of a job RespondNTS answered.
func (r *Responder) NTSResult(job *NTSJob) ([]byte, Verdict) {
	return ntsVerdict(job.Out, job.Reason, job.Limit, job.adm, job.v, &job.Tx)
}

func (r *Responder) respond(dst, req []byte, client netip.AddrPort, rx time.Time, lead time.Duration, job *NTSJob) ([]byte, Verdict, bool) {
	limit := min(len(req), cap(dst))
	var p Packet
	v := screen(&p, req, client)
	if v.Reason != ReasonOK {
		return nil, v, false
	}
	v.Auth = claimedAuth(&p)
	if p.Header.Mode == ModeSymmetricActive && v.Auth == AuthNTS {
		// NTS is defined for client/server mode only (RFC 8915 §5).
		v.Reason = ReasonMode
		return nil, v, false
	}
	adm := Admission{Action: ActionReply}
	if r.Gate != nil {
		adm = r.Gate.Admit(client.Addr().Unmap(), rx, v.Auth)
	}
	v.Leak = adm.Leak
	if p.Header.Mode == ModeSymmetricActive {
		adm = admitPeer(adm)
	}
	if adm.Action == ActionDrop {
		v.Reason = adm.Reason
		return nil, v, false
	}
	switch v.Auth {
	case AuthNTS:
		return r.respondNTS(dst[:0], limit, req, &p, client, rx, adm, v, lead, job)
	case AuthKey:
		reply, v := r.respondKeyed(dst[:0], limit, req, &p, client, rx, adm, v, lead)
		return reply, v, false
	}
	if len(p.MAC) > 0 {
		// A bare crypto-NAK trailer in a request is meaningless.
		v.Reason = ReasonFraming
		return nil, v, false
	}
	tx := Stamper{lead: lead}
	reply := r.header(dst[:0], &p.Header, client, rx, adm, &tx)
	if hdr := reply[len(reply)-HeaderLen:]; r.EdgeRestamps && adm.Action == ActionReply && tx.xl == nil {
		// Restampable (basic mode, no MAC, not a kiss): the edge stamps it.
		PutTransmit(hdr, Time64(binary.BigEndian.Uint64(hdr[32:40]))+1)
	} else {
		tx.Stamp(hdr)
	}
	reply, v = finish(reply, limit, adm, v)
	reply, v = tx.save(reply, 0, v)
	return reply, v, false
}

// admitPeer narrows an admission for a symmetric-active (mode 1) request,
// which is answered statelessly with mode 2, as chronyd answers a peer it
// has not configured and ntpd one that nopeer does not forbid: Windows'
// w32time polls in mode 1 unless its peer flags include 0x8. Where the
// matching rule has nopeer it is refused; a kiss (RFC 5905 §7.4 defines
// them for client/server exchanges) becomes silence.
func admitPeer(adm Admission) Admission {
	switch {
	case adm.Action == ActionDrop:
	case adm.NoPeer:
		adm.Action, adm.Reason = ActionDrop, ReasonPolicy
	case adm.Action == ActionKoD:
		adm.Action = ActionDrop
	}
	return adm
}

// screen applies the checks that need no state: everything that is not a
// well-formed client (mode 3) or symmetric-active (mode 1) request is
// dropped before any further work.
func screen(p *Packet, req []byte, client netip.AddrPort) Verdict {
	v := Verdict{Action: ActionDrop}
	if len(req) < HeaderLen {
		v.Reason = ReasonShort
		return v
	}
	if client.Port() == 0 {
		// Port 0 cannot be a real client; answering it aims at nothing good.
		v.Reason = ReasonSourcePort
		return v
	}
	if !unicastSource(client.Addr()) {
		v.Reason = ReasonSourceAddr
		return v
	}
	if vn := (req[0] >> 3) & 7; vn == 0 || vn > versionNTPv4 {
		v.Reason = ReasonVersion
		return v
	}
	if m := Mode(req[0] & 7); m != ModeClient && m != ModeSymmetricActive {
		v.Reason = ReasonMode
		return v
	}
	if parseInto(p, req) != nil {
		v.Reason = ReasonFraming
	}
	return v
}

// unicastSource reports whether a can be the source of a real request. No
// host sends from a broadcast, multicast or unspecified address (RFC 1122
// §3.2.1.3, RFC 4291 §2.7); a datagram claiming one is forged, and a reply
// to it would go to every host on a link or group (Go sets SO_BROADCAST on
// UDP sockets, so the kernel does not stop a reply to 255.255.255.255).
// A directed broadcast (x.y.z.255) cannot be told from a host address
// without the interface's netmask, which the pure core does not know.
//
// The family is tested once and the IPv4 checks made on the address's
// four octets, rather than through netip's predicates, each of which
// unmaps and tests the family again: this runs for every datagram, floods
// included.
func unicastSource(a netip.Addr) bool {
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		v4 := binary.BigEndian.Uint32(b[:])
		// 0.0.0.0, 224.0.0.0/4 (multicast), 255.255.255.255 (RFC 919)
		return v4 != 0 && v4>>28 != 0xe && v4 != 0xffffffff
	}
	// :: and ff00::/8; the zero Addr is neither family
	return a.Is6() && !a.IsUnspecified() && !a.IsMulticast()
}

// claimedAuth classifies a request by its shape: any NTS field makes it an
// NTS request (which then must be entirely valid), a MAC trailer with a
// digest makes it keyed.
func claimedAuth(p *Packet) AuthKind {
	if p.NTS.Any() {
		return AuthNTS
	}
	if len(p.MAC) > cryptoNAKLen {
		return AuthKey
	}
	return AuthNone
}

// header appends the reply header to dst: a kiss if the admission says so,
// otherwise the served time. The transmit timestamp is left to tx, which
// the caller applies once nothing but the work that depends on it remains.
func (r *Responder) header(dst []byte, req *Header, client netip.AddrPort, rx time.Time, adm Admission, tx *Stamper) []byte {
	if adm.Action == ActionKoD {
		h := KissHeader(req, adm.Kiss)
		return h.Append(dst)
	}
	st := r.State()
	mode := ModeServer
	if req.Mode == ModeSymmetricActive {
		mode = ModeSymmetricPassive // stateless: no association is kept
	}
	h := Header{
		Leap:           st.Indicator(rx),
		Version:        req.Version,
		Mode:           mode,
		Stratum:        st.Stratum,
		Poll:           clampPoll(req.Poll),
		Precision:      st.Precision,
		RootDelay:      Time32From(st.RootDelay),
		RootDispersion: Time32From(st.RootDispersion),
		RefID:          st.RefID,
		Origin:         req.Transmit,
		// chrony's marks (ntp_core.c, transmit_packet): the receive
		// timestamp ends in 1 and the transmit timestamp in 0, so a request
		// whose origin ends in 1 can only be echoing a receive timestamp,
		// i.e. asking for interleaved mode, and only those need a look
		// into the table.
		Receive: st.Time64(rx) | 1,
	}
	if h.Receive == req.Origin {
		// Never equal to the origin: the client could not tell the modes apart.
		h.Receive += 2
	}
	if !st.RefTime.IsZero() {
		h.RefTime = Time64From(st.RefTime)
	}
	tx.state, tx.now = st, r.Now
	if r.interleavable(req, adm) {
		tx.xl, tx.client, tx.origin, tx.receive = r.Interleave, client.Addr().Unmap(), req.Origin, req.Receive
	}
	return h.Append(dst)
}

func finish(reply []byte, limit int, adm Admission, v Verdict) ([]byte, Verdict) {
	if len(reply) > limit {
		v.Reason = ReasonNoRoom
		return nil, v
	}
	v.Action = adm.Action
	v.Kiss = adm.Kiss
	v.Reason = ReasonOK
	if adm.Action == ActionKoD {
		v.Reason = adm.Reason
	}
	return reply, v
}

// respondKeyed verifies an RFC 8573 MAC over the raw received bytes and
// answers with a MAC under the same key. Unknown keys and bad MACs are
// dropped silently, as chrony does: a crypto-NAK would be unauthenticated
// and tells an attacker only that it failed.
func (r *Responder) respondKeyed(dst []byte, limit int, req []byte, p *Packet, client netip.AddrPort, rx time.Time, adm Admission, v Verdict, lead time.Duration) ([]byte, Verdict) {
	id, _ := p.KeyID()
	var key MACKey
	ok := false
	if r.Keys != nil {
		key, ok = r.Keys(id)
	}
	if !ok {
		v.Reason = ReasonUnknownKey
		return nil, v
	}
	signed := req[:len(req)-len(p.MAC)]
	// The reply has the request's version, so it carries a digest of the
	// same length as the request's: never larger than the request.
	n := key.MACLen(p.Header.Version)
	if len(p.Digest()) != n || !key.Verify(signed, p.Digest()) {
		v.Reason = ReasonBadMAC
		return nil, v
	}
	start := len(dst)
	tx := Stamper{lead: lead}
	reply := r.header(dst, &p.Header, client, rx, adm, &tx)
	tx.Stamp(reply[len(reply)-HeaderLen:])
	if len(reply)+keyIDLen+n > limit {
		v.Reason = ReasonNoRoom
		return nil, v
	}
	reply = append(reply, p.MAC[:keyIDLen]...)
	reply = key.SumTrunc(reply, reply[:len(reply)-keyIDLen], n)
	reply, v = finish(reply, limit, adm, v)
	return tx.save(reply, start, v)
}

// respondNTS hands an NTS request to the NTS handler with the reply
// header (RFC 8915 §5.7). A cookie that does not open earns the NTS NAK the
// handler writes; any other failure earns nothing. The handler stamps the
// transmit timestamp itself, between sealing the new cookies and the
// Authenticator over the header (see NTSHandler).
func (r *Responder) respondNTS(dst []byte, limit int, req []byte, p *Packet, client netip.AddrPort, rx time.Time, adm Admission, v Verdict, lead time.Duration, job *NTSJob) ([]byte, Verdict, bool) {
	if r.NTS == nil {
		v.Reason = ReasonNTSDisabled
		return nil, v, false
	}
	tx := Stamper{lead: lead}
	reply := r.header(dst, &p.Header, client, rx, adm, &tx)
	if _, ok := r.NTS.(NTSBatchHandler); ok && job != nil {
		*job = NTSJob{Reply: reply, Req: req, Fields: p.NTS, Limit: limit, Tx: tx, adm: adm, v: v}
		return nil, v, true
	}
	reply, reason := r.NTS.Respond(reply, req, p.NTS, limit, tx)
	reply, v = ntsVerdict(reply, reason, limit, adm, v, &tx)
	return reply, v, false
}

// ntsVerdict turns the NTS handler's answer into the reply and verdict.
func ntsVerdict(reply []byte, reason Reason, limit int, adm Admission, v Verdict, tx *Stamper) ([]byte, Verdict) {
	switch {
	case reason == ReasonOK && reply != nil:
		reply, v = finish(reply, limit, adm, v)
		return tx.save(reply, 0, v)
	case reason == ReasonBadCookie && reply != nil:
		reply, v = finish(reply, limit, Admission{Action: ActionNTSNAK, Kiss: KissNTSN}, v)
		if reply != nil {
			v.Reason = ReasonBadCookie
		}
		return reply, v
	case reason == ReasonOK:
		reason = ReasonNoRoom
	}
	v.Reason = reason
	return nil, v
}
