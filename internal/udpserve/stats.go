package udpserve

import (
	"sync"
	"sync/atomic"
	"time"

	"timegate/ntp"
)

// cacheLine is the padding around a worker's counters: 128 bytes, because
// Intel cores prefetch 64-byte lines in adjacent pairs and Apple cores have
// 128-byte lines, so 64 would still let two workers' counters share traffic.
const cacheLine = 128

// numModes is the number of NTP modes a first octet can carry (3 bits).
const numModes = 8

// numAuth is the number of ntp.AuthKind values.
const numAuth = int(ntp.AuthNTS) + 1

// counters is one worker's block of verdict counters. Only its worker
// writes it, so its cache lines stay in that core's cache: with one shared
// block every request moved three lines between cores (issue 8). The pads
// keep any other allocation off the lines the counters sit on. Readers load
// the fields concurrently through Stats.Snapshot.
type counters struct {
	_          [cacheLine]byte
	received   atomic.Uint64
	byMode     [numModes]atomic.Uint64
	replied    atomic.Uint64
	kod        atomic.Uint64
	kodRATE    atomic.Uint64
	kodDENY    atomic.Uint64
	kodRSTR    atomic.Uint64
	ntsNAK     atomic.Uint64
	leaked     atomic.Uint64
	sendErrors atomic.Uint64
	// interleaved counts replies sent in interleaved mode; txStamps the
	// kernel transmit timestamps the interleaved table took.
	interleaved atomic.Uint64
	txStamps    atomic.Uint64
	// txLead is the transmit lead (txlead.go) the worker adds to basic
	// replies, in nanoseconds; leadProbes counts the stamps that measured it.
	txLead     atomic.Int64
	leadProbes atomic.Uint64
	// leadLag and leadCost are what txLead was made of (leadEstimator.parts).
	leadLag, leadCost atomic.Int64
	dropped           [ntp.NumReasons]atomic.Uint64
	answered          [numAuth]atomic.Uint64
	_                 [cacheLine]byte
}

// request counts a datagram as received, by the mode its first octet
// claims; a datagram too short to claim one counts only as received.
func (c *counters) request(req []byte) {
	c.received.Add(1)
	if len(req) > 0 {
		c.byMode[req[0]&(numModes-1)].Add(1)
	}
}

// record counts what was done with a request: dropped by reason, or sent
// (or refused by the kernel) by action, kiss and authentication.
func (c *counters) record(v ntp.Verdict, sendErr bool) {
	if v.Action == ntp.ActionDrop {
		c.dropped[v.Reason].Add(1)
		return
	}
	if sendErr {
		c.sendErrors.Add(1)
		return
	}
	switch v.Action {
	case ntp.ActionReply:
		c.replied.Add(1)
	case ntp.ActionKoD:
		c.kod.Add(1)
		switch v.Kiss {
		case ntp.KissRATE:
			c.kodRATE.Add(1)
		case ntp.KissDENY:
			c.kodDENY.Add(1)
		case ntp.KissRSTR:
			c.kodRSTR.Add(1)
		}
	case ntp.ActionNTSNAK:
		c.ntsNAK.Add(1)
	}
	if v.Leak {
		c.leaked.Add(1)
	}
	if v.Interleaved {
		c.interleaved.Add(1)
	}
	if int(v.Auth) < numAuth {
		c.answered[v.Auth].Add(1)
	}
}

// Stats gathers the counter blocks of every worker that serves with it and
// sums them when read. The zero value is ready to use; a Stats must not be
// copied.
type Stats struct {
	mu      sync.Mutex
	workers []*counters
	sockets []*sockDrops
}

// sockDrops follows one worker socket's kernel drop counter, which lives
// in the kernel and is read only when the counters are (a scrape, `gatectl
// serverstats`), so the packet path pays nothing for it.
type sockDrops struct {
	mu sync.Mutex
	// read returns the kernel's count, a 32-bit one that wraps; nil once
	// the socket is closed. The mutex orders a read before the close, so
	// a descriptor number reused after it is never asked.
	read  func() (uint32, bool)
	last  uint32
	total uint64
}

// update adds what the kernel counted since the last read. The kernel's
// counter is 32 bits: the difference taken modulo 2^32 keeps the total
// right across a wrap as long as reads come less than 2^32 drops apart
// (at a million drops a second, over an hour).
func (d *sockDrops) update() {
	if d.read == nil {
		return
	}
	if n, ok := d.read(); ok {
		d.total += uint64(n - d.last)
		d.last = n
	}
}

// load returns the socket's drops so far.
func (d *sockDrops) load() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.update()
	return d.total
}

// retire takes the final count and stops reading: its socket is about
// to be closed. The total stays in the sum.
func (d *sockDrops) retire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.update()
	d.read = nil
}

// socket registers a worker socket's kernel drop counter (read reports
// it) and returns the handle whose retire must come before the socket's
// close.
func (s *Stats) socket(read func() (uint32, bool)) *sockDrops {
	// From zero: drops since the socket was bound (before the worker
	// started, too) were requests to this service.
	d := &sockDrops{read: read}
	s.mu.Lock()
	s.sockets = append(s.sockets, d)
	s.mu.Unlock()
	return d
}

// worker returns a new block of counters for one worker, a goroutine that
// reads one socket. Blocks are kept after their worker ends, so that the
// sums never go backwards.
func (s *Stats) worker() *counters {
	c := new(counters)
	s.mu.Lock()
	s.workers = append(s.workers, c)
	s.mu.Unlock()
	return c
}

// Snapshot is the sum of every worker's counters at one moment. Each field
// is monotonic; fields are read one after another while workers count, so
// their relations (Received ≥ Replied + ...) hold only approximately.
type Snapshot struct {
	Received uint64
	// ByMode counts received datagrams by the mode field of their first
	// octet (RFC 5905 §7.3), dropped ones included: mode 6 and 7 are the
	// scanners' queries for amplifiers.
	ByMode  [numModes]uint64
	Replied uint64 // time replies (not kisses, not NAKs)
	// KoD counts kisses sent; KoDRATE, KoDDENY and KoDRSTR split them by
	// code.
	KoD, KoDRATE, KoDDENY, KoDRSTR uint64
	NTSNAK                         uint64
	// Leaked counts requests over their rate limit answered anyway, so a
	// spoofer cannot silence the address it spoofs.
	Leaked uint64
	// Dropped counts requests answered with nothing, by ntp.Reason.
	Dropped [ntp.NumReasons]uint64
	// Answered counts what was sent (time, kisses and NAKs) by the
	// request's ntp.AuthKind.
	Answered [numAuth]uint64
	// SendErrors counts replies the kernel refused.
	SendErrors uint64
	// Interleaved counts replies sent in interleaved mode (RFC 9769);
	// TxStamps the kernel transmit timestamps kept for such replies.
	Interleaved, TxStamps uint64
	// TxLead is the largest transmit lead a worker adds to basic replies'
	// transmit timestamps (the time from the clock read to the kernel's
	// transmit stamp, learned from LeadProbes stamps); 0 until learned or
	// where the kernel gives no transmit stamps.
	TxLead     time.Duration
	LeadProbes uint64
	// TxLeadLag and TxLeadCost are what that worker's lead was made of:
	// the probes' lag and the stamp's cost taken off it.
	TxLeadLag, TxLeadCost time.Duration
	// KernelDrops counts requests the kernel dropped before any worker
	// saw them, because a socket's receive buffer was full (Linux,
	// SO_MEMINFO): not in Received.
	KernelDrops uint64
}

// storeLead publishes a worker's transmit lead and what it was made of.
func (c *counters) storeLead(e *leadEstimator) {
	lag, cost := e.parts()
	c.txLead.Store(int64(e.lead()))
	c.leadLag.Store(int64(lag))
	c.leadCost.Store(int64(cost))
}

// Snapshot sums the workers' counters.
func (s *Stats) Snapshot() Snapshot {
	s.mu.Lock()
	workers, sockets := s.workers, s.sockets
	s.mu.Unlock()
	var out Snapshot
	for _, c := range workers {
		out.add(c)
	}
	for _, d := range sockets {
		out.KernelDrops += d.load()
	}
	return out
}

func (out *Snapshot) add(c *counters) {
	out.Received += c.received.Load()
	for i := range c.byMode {
		out.ByMode[i] += c.byMode[i].Load()
	}
	out.Replied += c.replied.Load()
	out.KoD += c.kod.Load()
	out.KoDRATE += c.kodRATE.Load()
	out.KoDDENY += c.kodDENY.Load()
	out.KoDRSTR += c.kodRSTR.Load()
	out.NTSNAK += c.ntsNAK.Load()
	out.Leaked += c.leaked.Load()
	out.SendErrors += c.sendErrors.Load()
	out.Interleaved += c.interleaved.Load()
	out.TxStamps += c.txStamps.Load()
	if lead := time.Duration(c.txLead.Load()); lead >= out.TxLead {
		out.TxLead, out.TxLeadLag, out.TxLeadCost = lead, time.Duration(c.leadLag.Load()), time.Duration(c.leadCost.Load())
	}
	out.LeadProbes += c.leadProbes.Load()
	for i := range c.dropped {
		out.Dropped[i] += c.dropped[i].Load()
	}
	for i := range c.answered {
		out.Answered[i] += c.answered[i].Load()
	}
}
