package engine

import (
	"syscall"
	"time"

	"go.uber.org/zap"

	"timegate/internal/reqsock"
	"timegate/ntp"
)

// rawRequests is the loop's request path on Linux (internal/reqsock): the loop itself
// opens the socket, sends and goes back to sleep, and reads the reply when a waiter
// goroutine says one is there. A poll then wakes no thread but the loop's before the
// reply comes (the reqsock package says why that matters). Elsewhere, and under an
// injected clock or Dialer (tests), set is nil and requests go through request.
type rawRequests struct {
	set   *reqsock.Set
	ack   chan struct{}  // the loop has read what the waiter reported
	byFD  map[int]*assoc // whose request each open socket is
	ready []int          // scratch for Ready
	buf   []byte         // one datagram, one octet more than any we take
}

// outstanding is an association's request in flight on a raw socket.
type outstanding struct {
	open     bool
	fd       int
	id       uint64    // the reqID it was sent as
	sent     time.Time // system clock; the kernel's transmit stamp when kernelTx
	kernelTx bool
	txStamps bool      // the socket reports transmit stamps
	until    time.Time // engine clock: the request is given up then
}

// maxReadsPerWake bounds the datagrams read from one socket per report, so that a
// flood (from the upstream's own address: the socket is connected) cannot hold the loop;
// what is left is reported again at once.
const maxReadsPerWake = 8

// openRaw sets the raw path up where it can be used: the kernel's stamps and an
// injected clock would disagree, and an injected Dialer is a fake network.
func (r *runner) openRaw() {
	if r.opts.Now != nil || r.opts.Dialer != nil {
		return
	}
	set, err := reqsock.New()
	if err != nil {
		r.log.Debug("requests through net", zap.Error(err))
		return
	}
	r.raw = rawRequests{set: set, ack: make(chan struct{}, 1), byFD: map[int]*assoc{}, buf: make([]byte, ntp.MaxPacketLen+1)}
	r.goTrack(r.waitReplies)
}

// waitReplies is the waiter: it parks until a request socket has something to read,
// tells the loop, and waits until the loop has read it (the sockets are
// level-triggered: asked again before that, the set would report the same datagram).
func (r *runner) waitReplies() {
	for r.raw.set.Wait() == nil {
		if !r.post(repliesReady{}) {
			return
		}
		select {
		case <-r.raw.ack:
		case <-r.ctx.Done():
			return
		}
	}
}

// closeRaw closes every request socket and the set, which ends the waiter.
func (r *runner) closeRaw() {
	if r.raw.set == nil {
		return
	}
	for _, a := range r.assocs {
		r.closeRequest(a)
	}
	r.raw.set.Close()
}

// sendRaw sends a's request from a new socket connected to the source. The send time is
// read just before the send; the kernel's transmit stamp replaces it when the error
// queue has it (on loopback and most drivers at once, else by the time the reply is
// read).
func (r *runner) sendRaw(a *assoc, pkt []byte, timeout time.Duration) {
	r.closeRequest(a) // superseded
	set := r.raw.set
	fd, txStamps, err := set.Open(a.addr)
	if err != nil {
		r.log.Debug("request socket", zap.Stringer("source", a.addr), zap.Error(err))
		return
	}
	sent := r.now()
	if err := set.Send(fd, pkt); err != nil {
		r.log.Debug("request send", zap.Stringer("source", a.addr), zap.Error(err))
		set.Release(fd)
		return
	}
	out := outstanding{open: true, fd: fd, id: a.reqID, sent: sent, txStamps: txStamps, until: sent.Add(timeout)}
	if txStamps {
		if t, ok := set.TxTime(fd); ok {
			out.kernelTx = takeTxStamp(&out.sent, t)
		}
	}
	if err := set.Watch(fd); err != nil {
		r.log.Warn("request socket", zap.Stringer("source", a.addr), zap.Error(err))
		set.Release(fd)
		return
	}
	a.out = out
	r.raw.byFD[fd] = a
}

// closeRequest gives a's request in flight up, if it has one.
func (r *runner) closeRequest(a *assoc) {
	if !a.out.open {
		return
	}
	delete(r.raw.byFD, a.out.fd)
	r.raw.set.Release(a.out.fd)
	a.out = outstanding{}
}

// expireRequests gives up the requests whose wait is over.
func (r *runner) expireRequests(now time.Time) {
	for _, a := range r.assocs {
		if a.out.open && !now.Before(a.out.until) {
			r.closeRequest(a)
		}
	}
}

// readReplies reads every socket the set reports and lets the waiter wait again.
func (r *runner) readReplies() {
	raw := &r.raw
	raw.ready = raw.set.Ready(raw.ready[:0])
	for _, fd := range raw.ready {
		// A socket closed while this report was read (a reply that
		// finished a request which the same round superseded) is gone
		// from byFD; a number reused by a request opened since is read
		// too, and has nothing yet.
		if a := raw.byFD[fd]; a != nil {
			r.readSocket(a)
		}
	}
	raw.ack <- struct{}{}
}

// readSocket reads what a's request socket has: the error queue (transmit stamps; epoll
// reports the socket until it is empty) and up to maxReadsPerWake datagrams.
func (r *runner) readSocket(a *assoc) {
	set, out := r.raw.set, &a.out
	id := out.id
	if out.txStamps {
		if t, ok := set.TxTime(out.fd); ok && !out.kernelTx {
			out.kernelTx = takeTxStamp(&out.sent, t)
		}
	}
	for range maxReadsPerWake {
		n, rx, errno := set.Recv(out.fd, r.raw.buf)
		switch errno {
		case 0:
		case syscall.EAGAIN, syscall.EINTR:
			return
		default:
			// ICMP's refusal (ECONNREFUSED) and the like: the request
			// is lost, as it was with the socket's read failing.
			r.closeRequest(a)
			return
		}
		if n > ntp.MaxPacketLen {
			continue
		}
		kernelRx := !rx.IsZero()
		if !kernelRx {
			rx = r.now()
		}
		fin, acts := r.reply(a, out.id, r.raw.buf[:n], out.sent, rx, out.kernelTx, kernelRx)
		if fin {
			r.closeRequest(a)
		}
		r.apply(a, acts)
		if !a.out.open || a.out.id != id {
			return // finished, or superseded by the request apply just sent
		}
	}
}
