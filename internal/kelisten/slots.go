package kelisten

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits that defend the session slots against slowloris floods from many
// addresses (a campaign held all 256 slots with idle connections from
// rotating 127/8 addresses, and a legitimate client then completed NTS-KE in
// fewer than one attempt in five).
const (
	// evictMinAge spares a connection accepted a moment ago: its client has
	// had no time to send a ClientHello yet. Older connections that have not
	// finished the TLS handshake are fair game once every slot is taken.
	evictMinAge = 100 * time.Millisecond
	// pressureHandshakeTimeout is the handshake deadline once the slots are
	// three quarters full, instead of the whole session timeout: two round
	// trips of a 300 ms path, with room for the client's key exchange.
	pressureHandshakeTimeout = 750 * time.Millisecond
	// pressureRequestTimeout is, under the same pressure, how long a client
	// that finished its handshake has to send its request: a real client
	// sends it at once, in the flight after its Finished, so only a
	// slowloris that paid for a handshake waits longer.
	pressureRequestTimeout = 500 * time.Millisecond
	// slotPoll is how often a full listener looks again for an idle
	// connection old enough to evict when no session ends meanwhile.
	slotPoll = 20 * time.Millisecond
)

// session is one accepted connection while it holds a slot.
type session struct {
	conn        net.Conn
	addr        netip.Addr // the peer's address
	host, block netip.Addr // sourceKey and blockKey of the peer
	start       time.Time
	pressed     bool  // the slots were under pressure when it got its own
	evicted     uint8 // FailNone, or why it was closed to make room; under slots.mu
}

// slots tracks the sessions: how many in total, per source and per block,
// and which have not finished their TLS handshake (pending, oldest first by
// start time), the ones a full listener evicts. Its maps hold at most max
// keys each.
type slots struct {
	mu                  sync.Mutex
	max, perHost, perBl int
	reserved            int // taken by an accept loop, no session yet
	active              int // sessions running
	hosts, blocks       map[netip.Addr]int
	pending             map[*session]struct{}
	freed               chan struct{} // a slot was given back; capacity 1
}

func (s *slots) init(max, perHost, perBlock int) {
	s.max, s.perHost, s.perBl = max, perHost, perBlock
	s.hosts = make(map[netip.Addr]int)
	s.blocks = make(map[netip.Addr]int)
	s.pending = make(map[*session]struct{})
	s.freed = make(chan struct{}, 1)
}

// What waitSlot found.
const (
	slotTaken     = iota // a slot is reserved for the next connection
	slotEvictable        // all taken, but one may be evicted for a newcomer
	slotStopped          // ctx ended
)

// waitSlot waits for a free slot and reserves it. While every slot is taken
// and some connection has not finished its handshake though it is at least
// evictMinAge old, it returns slotEvictable when evict is false: the caller
// accepts first, so that nobody is evicted unless a newcomer waits, then
// calls again with evict set, which closes the oldest such connection and
// takes the slot it frees. An idle connection costs its owner nothing, so
// it must not keep a slot from a client that is ready.
func (l *Listener) waitSlot(ctx context.Context, evict bool) int {
	s := &l.slots
	for {
		s.mu.Lock()
		if s.active+s.reserved < s.max {
			s.reserved++
			s.mu.Unlock()
			return slotTaken
		}
		victim := s.oldestPending(l.now(), nil)
		if victim != nil && !evict {
			s.mu.Unlock()
			return slotEvictable
		}
		if victim != nil {
			victim.evicted = FailTotalCap
			delete(s.pending, victim)
		}
		s.mu.Unlock()
		if victim != nil {
			l.stats.refusedTotalCap.Add(1)
			victim.conn.Close() // its handshake fails now and releases the slot
		}
		t := time.NewTimer(slotPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return slotStopped
		case <-s.freed:
		case <-t.C:
		}
		t.Stop()
	}
}

// oldestPending is the oldest session still before its handshake, at least
// evictMinAge old, among those match accepts (nil: all).
func (s *slots) oldestPending(now time.Time, match func(*session) bool) *session {
	var old *session
	for p := range s.pending {
		if (match == nil || match(p)) && now.Sub(p.start) >= evictMinAge && (old == nil || p.start.Before(old.start)) {
			old = p
		}
	}
	return old
}

// unreserve gives back a slot that got no session.
func (s *slots) unreserve() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
	s.signal()
}

func (s *slots) signal() {
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

// attach puts a session into its reserved slot. When its source or its
// block already has its share, the oldest of that source's (or block's)
// connections still before its handshake makes room, as a full listener
// evicts: an attacker sharing a client's /24 or NAT address cannot hold
// the share with idle connections. The victim, if any, is returned for the
// caller to close. Without one the newcomer is refused (counted in c) and
// the caller gives the reservation back.
func (s *slots) attach(ss *session, c *counters, now time.Time) (ok bool, victim *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hostFull := s.hosts[ss.host] >= s.perHost; hostFull || s.blocks[ss.block] >= s.perBl {
		victim = s.oldestPending(now, func(p *session) bool {
			return p.host == ss.host || !hostFull && p.block == ss.block
		})
		if victim == nil {
			c.refusedSourceCap.Add(1)
			return false, nil
		}
		c.refusedSourceCap.Add(1)
		victim.evicted = FailSourceCap
		delete(s.pending, victim)
	}
	s.reserved--
	s.active++
	ss.pressed = s.underPressure()
	s.hosts[ss.host]++
	s.blocks[ss.block]++
	s.pending[ss] = struct{}{}
	return true, victim
}

// handshaken marks the end of the session's handshake, successful or not:
// it can no longer be evicted.
func (s *slots) handshaken(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, ss)
}

// release frees the session's slot and says why it was evicted (FailNone:
// it was not).
func (s *slots) release(ss *session) uint8 {
	s.mu.Lock()
	s.active--
	delete(s.pending, ss)
	dec(s.hosts, ss.host)
	dec(s.blocks, ss.block)
	evicted := ss.evicted
	s.mu.Unlock()
	s.signal()
	return evicted
}

func dec(m map[netip.Addr]int, k netip.Addr) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// pressure reports whether three quarters of the slots hold sessions (the
// one asking included): a session that starts so gets
// pressureHandshakeTimeout, one that finishes its handshake so
// pressureRequestTimeout.
func (s *slots) pressure() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.underPressure()
}

func (s *slots) underPressure() bool { return 4*s.active >= 3*s.max }

func (s *slots) running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}
