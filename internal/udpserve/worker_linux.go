//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"timegate/ntp"
)

// batchSize is how many datagrams one recvmmsg takes and one sendmmsg
// sends at most. chronyd takes up to 16 per call; 64 halves the system
// calls again at saturation for 140 kB of buffers per worker, and costs
// nothing at low load (recvmmsg returns what is queued).
const batchSize = 64

// maxSendLag bounds how long a reply waits, after its transmit timestamp
// was taken, for the sendmmsg that carries it: batching must not move T3
// away from the moment the reply leaves by more than this (plus the one
// request being answered when the bound is found passed). A plain reply
// takes about 0.1 µs to build and an NTS one about 2.5 µs, so at
// saturation a send carries about 8 NTS replies or a whole batch of plain
// ones. The kernel's own work on the replies queued before one in a
// sendmmsg delays it too, as it would a run of sendmsg calls. It binds
// only replies whose T3 is final when built (NTS, keyed, interleaved):
// flush writes a plain reply's T3 again just before the send.
const maxSendLag = 20 * time.Microsecond

// EdgeRestamps says this platform's worker writes the transmit timestamp
// of every Restampable reply again just before its sendmmsg (flush), so
// the responder need not read the clock for them
// (ntp.Responder.EdgeRestamps).
const EdgeRestamps = true

// mmsghdr is struct mmsghdr of <sys/socket.h> on 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// batch is one worker's memory: every buffer the packet path touches,
// allocated once, so that a request allocates nothing. Received datagram
// i is buf[i] from name[i]; the k-th reply of a send is out[k], addressed
// to the request's own sockaddr (scope ID included) with its pktinfo in
// soob[k].
type batch struct {
	rhdr [batchSize]mmsghdr
	riov [batchSize]unix.Iovec
	name [batchSize][unix.SizeofSockaddrInet6]byte
	oob  [batchSize][oobLen]byte
	buf  [batchSize][bufSize]byte

	shdr    [batchSize]mmsghdr
	siov    [batchSize]unix.Iovec
	soob    [batchSize][replyOOBLen]byte
	out     [batchSize][bufSize]byte
	verdict [batchSize]ntp.Verdict

	// NTS requests deferred by RespondOrDefer, answered together (see
	// answerNTS): the job, and the datagram and control data it came with.
	jobs    [ntsChunk]ntp.NTSJob
	jobRecv [ntsChunk]int
	jobCtl  [ntsChunk]control
	jobFrom [ntsChunk]netip.AddrPort
	njobs   int

	eq errq // the error queue's transmit timestamps
}

// ntsChunk is how many NTS requests of a receive batch a worker answers in
// one call to the NTS handler: enough for the handler to overlap their AES
// work (nts takes sixteen through its phases together), few enough that
// the first of them is not held back long behind the others. Their
// transmit timestamps are read one by one as each is sealed, and
// maxSendLag bounds how long a stamped reply then waits for the send.
const ntsChunk = 16

// worker reads one socket.
type worker struct {
	s      *Server
	fd     uintptr // the socket, detached from Go's poller (see detach)
	cnt    *counters
	drops  *sockDrops // the socket's kernel drop counter, read by Stats
	b      *batch
	v6     bool // AF_INET6 socket: replies carry IPV6_PKTINFO
	stamps bool // kernel receive timestamps are on
	// txStamps: the kernel gives transmit timestamps on request;
	// txWanted counts those asked for and not yet read from the error
	// queue, which is read only while it is not zero.
	txStamps bool
	txWanted int

	// State of the current read and send. rdirty counts the receive
	// headers the last recvmmsg filled in (their name and control lengths
	// now the datagram's, not the buffers'): only those need resetting.
	got           int
	rdirty        int
	pending, sent int
	ctl           control // the control messages of the datagram being answered
	// rxNow stands in for the receive time of a datagram without a kernel
	// stamp, read at the first such datagram of a batch (zero until then;
	// run clears it per batch): with stamps on, no clock is read for it.
	rxNow time.Time
	// fixed: a pending reply carries a transmit timestamp that the send
	// will not rewrite (see handle), the first built at oldest, on the
	// monotonic clock since epoch.
	fixed  bool
	oldest time.Duration
	epoch  time.Time
	// chunkAt, when chunkSet, is the monotonic time (since epoch) read
	// once after an NTS chunk was answered: queue's send-lag checks of
	// the chunk's replies use it rather than a clock read each (about
	// 1 % of a worker saturated with NTS requests). They would all read
	// within the same microsecond.
	chunkAt  time.Duration
	chunkSet bool
	resp     *ntp.Responder // the one that built the pending replies
	maxLag   time.Duration  // maxSendLag; a benchmark under callgrind lifts it
	probe    leadProbe      // the transmit lead (txlead.go)
	sendRead time.Time      // the clock read before a timed single-reply send (sendKind)
	sendKind leadSend       // what that send is for the transmit lead

	// The worker's own epoll instance (see detach and wait), watched by
	// Go's poller, and the state of one wait, kept here so that the
	// functions handed to its RawConn are made once, not per call.
	ep       *os.File
	eprc     syscall.RawConn
	epOp     int
	epEv     unix.EpollEvent
	epCErr   error
	epEvents [1]unix.EpollEvent
	epErr    bool // the last report included EPOLLERR
	epWaitFn func(fd uintptr) bool
	epCtl    func(fd uintptr)
}

// newWorker sets c up and takes its socket over: c itself is closed (see
// detach); the worker's close releases the socket.
func newWorker(s *Server, c *net.UDPConn) (*worker, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	w := &worker{s: s, cnt: s.Stats.worker(), b: new(batch), maxLag: maxSendLag, epoch: time.Now(), probe: leadProbe{idx: -1, every: leadProbeEvery}}
	w.v6, w.stamps = enableControl(rc, boundToAny(rc))
	rc.Control(func(fd uintptr) { w.txStamps = enableTxStamps(int(fd)) })
	fd, err := detach(c)
	if err != nil {
		return nil, err
	}
	w.fd = uintptr(fd)
	if err := w.openEpoll(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	w.drops = s.Stats.socket(func() (uint32, bool) { return kernelDrops(fd) })
	w.epWaitFn, w.epCtl = w.epWait, w.epControl
	w.rdirty = batchSize // every header is set up by the first recv
	b := w.b
	b.eq.init()
	for i := range batchSize {
		b.riov[i].Base = &b.buf[i][0]
		b.riov[i].SetLen(bufSize)
		b.rhdr[i].hdr.Iov = &b.riov[i]
		b.rhdr[i].hdr.Iovlen = 1
		b.rhdr[i].hdr.Name = &b.name[i][0]
		b.rhdr[i].hdr.Control = &b.oob[i][0]
		b.shdr[i].hdr.Iov = &b.siov[i]
		b.shdr[i].hdr.Iovlen = 1
	}
	return w, nil
}

// detach takes c's socket out of Go's runtime poller: a duplicate
// descriptor made with fcntl (not c.File, whose os.File registers its
// duplicate with the poller again), then c closed, which removes c's
// descriptor from the poller's epoll set while the duplicate keeps the
// socket open.
//
// Why: a socket in an epoll set runs epoll's wake-up callback every time
// the kernel reports on it, and on loopback or a veth the reports of a
// send (the send buffer freed, a transmit timestamp queued) come between
// the reply's transmit timestamp and its arrival, with Go's netpoller
// thread woken from epoll_wait as often as not. Go's poller keeps every
// socket registered for good, so a basic reply reached the client about
// 1.2 µs after its T3 later than it had to, which put the served time
// 0.6–0.8 µs behind timegate's own clock on loopback (BENCHMARKS.md,
// "Workers outside Go's poller"). The worker instead waits through an
// epoll instance of its own, which holds the socket only while the worker
// has nothing to read (wait): no callback runs while it sends, as with
// chronyd's select loop. Go's poller watches that epoll instance, so
// waiting still parks only the goroutine.
func detach(c *net.UDPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("udpserve: dup: %w", derr)
	}
	c.Close()
	return fd, nil
}

// openEpoll makes the worker's epoll instance, non-blocking so that Go's
// poller can watch it.
func (w *worker) openEpoll() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("udpserve: epoll: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return fmt.Errorf("udpserve: epoll: %w", err)
	}
	w.ep = os.NewFile(uintptr(epfd), "udpserve-epoll")
	if w.eprc, err = w.ep.SyscallConn(); err != nil {
		w.ep.Close()
		return fmt.Errorf("udpserve: epoll: %w", err)
	}
	return nil
}

// wait adds the socket to the worker's epoll instance for events
// (EPOLLIN, EPOLLOUT; level-triggered, so what is already there is
// reported at once; EPOLLERR always), parks until one is reported, and
// takes the socket out again: it is on no wait queue of ours while the
// worker sends. It returns false when the epoll instance was closed
// (interrupt).
func (w *worker) wait(events uint32) bool {
	w.epEv = unix.EpollEvent{Events: events, Fd: int32(w.fd)}
	w.epOp = unix.EPOLL_CTL_ADD
	// Through Control, which holds the descriptor: interrupt may close
	// it at any moment, and a number closed under us could be reused.
	if err := w.eprc.Control(w.epCtl); err != nil || w.epCErr != nil {
		return false
	}
	ok := w.eprc.Read(w.epWaitFn) == nil
	w.epOp = unix.EPOLL_CTL_DEL
	w.eprc.Control(w.epCtl) // fails only when interrupted: ok is false then
	return ok
}

// epControl and epWait are raw system calls, like the batch calls (see
// run), and for one more reason: they are the first the worker makes when
// a request wakes it, and the runtime's entersyscall wakes sysmon when
// sysmon sleeps because every P was idle, as it does whenever the gateway
// was quiet for a few milliseconds. That second thread then preempted the
// worker on its CPU before the reply left and woke again around the send:
// a chronyd client's interleaved delay to timegate came out 0.27 µs above
// its delay to chronyd, 0.13 of it on the reply's own leg (the kernel's
// transmit stamp to the client's receive stamp); 0.13 and 0.08 without
// it (BENCHMARKS.md, "sysmon woken per request"). Neither call blocks:
// the wait has a zero timeout, and Go's poller does the waiting.

func (w *worker) epControl(fd uintptr) {
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, fd, uintptr(w.epOp), w.fd, uintptr(unsafe.Pointer(&w.epEv)), 0, 0)
	w.epCErr = errnoErr(errno)
}

// epWait takes the report of the worker's epoll instance without blocking;
// false makes Go's poller wait for the instance to become readable.
func (w *worker) epWait(fd uintptr) bool {
	// epoll_pwait with no signal mask: every architecture has it (arm64
	// has no epoll_wait).
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&w.epEvents[0])), uintptr(len(w.epEvents)), 0, 0, 0)
	if errno != 0 || n == 0 {
		return errno != 0 && errno != unix.EINTR
	}
	w.epErr = w.epEvents[0].Events&unix.EPOLLERR != 0
	return true
}

// errnoErr is errno as an error, nil for 0.
func errnoErr(errno syscall.Errno) error {
	if errno == 0 {
		return nil
	}
	return errno
}

// interrupt wakes a waiting worker (Serve's stop): closing its epoll
// instance ends the wait with an error.
func (w *worker) interrupt() { w.ep.Close() }

// close releases the socket and the epoll instance; the worker must not
// run any more.
func (w *worker) close() {
	w.ep.Close()
	w.drops.retire()
	unix.Close(int(w.fd))
}

// enableControl asks the kernel for what each datagram needs: its receive
// time and, on a socket bound to every address (anyAddr), the local
// address it was sent to (with the interface). A socket bound to one
// address answers from it anyway, so it is spared the pktinfo messages
// both ways (about a tenth of a loopback exchange's cost). It reports the
// socket's family and whether timestamps are on; a missing pktinfo option
// only means replies leave from the kernel's choice.
func enableControl(rc syscall.RawConn, anyAddr bool) (v6, stamps bool) {
	on := 0
	if anyAddr {
		on = 1
	}
	rc.Control(func(fd uintptr) {
		f := int(fd)
		dom, _ := unix.GetsockoptInt(f, unix.SOL_SOCKET, unix.SO_DOMAIN)
		v6 = dom == unix.AF_INET6
		stamps = unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) == nil
		if v6 {
			unix.SetsockoptInt(f, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, on)
		}
		// On a dual-stack socket too: for IPv4 requests it gives
		// ipi_spec_dst, the right source even for a broadcast request.
		unix.SetsockoptInt(f, unix.IPPROTO_IP, unix.IP_PKTINFO, on)
		neverFragment(f, v6)
	})
	return v6, stamps
}

// neverFragment makes replies leave whole, with DF set, whatever path MTU
// an ICMP message claims (IP_PMTUDISC_PROBE; for IPv6, and for IPv4 on a
// dual-stack socket, both levels). A reply is never longer than its
// request, which came over the path; and a forged "fragmentation needed"
// is how an off-path attacker makes a server fragment NTP replies so as to
// overwrite their second fragment (Malhotra et al., "Attacking the Network
// Time Protocol", NDSS 2016). Under the kernel's default
// (IP_PMTUDISC_WANT) every IPv4 reply also costs a hashed IP ID, which a
// DF datagram does without: about 1.4 % of a worker saturated with NTS
// requests (BENCHMARKS.md). Failure only leaves the kernel's default.
func neverFragment(fd int, v6 bool) {
	unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
	if v6 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE)
	}
}

// boundToAny reports whether a bound socket listens on every address (or
// its address cannot be read, when asking for pktinfo is the safe side).
func boundToAny(rc syscall.RawConn) bool {
	anyAddr := true
	rc.Control(func(fd uintptr) {
		switch sa, err := unix.Getsockname(int(fd)); a := sa.(type) {
		case *unix.SockaddrInet4:
			anyAddr = err != nil || a.Addr == [4]byte{}
		case *unix.SockaddrInet6:
			anyAddr = err != nil || a.Addr == [16]byte{}
		}
	})
	return anyAddr
}

func (w *worker) run(ctx context.Context) error {
	for ctx.Err() == nil {
		n, errno := w.recv()
		switch errno {
		case 0:
		case unix.EAGAIN:
			// Queued transmit stamps, or an error-queue message the last
			// wake-up reported (it would be reported again at once).
			if w.txWanted > 0 || w.epErr {
				w.epErr = false
				w.drainErrQueue(w.fd)
			}
			if !w.wait(unix.EPOLLIN) {
				return nil // interrupted
			}
			continue
		case unix.EINTR:
			continue
		default:
			if err := w.s.readError(ctx, errno); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			continue
		}
		w.got = n
		if n == batchSize && w.s.busy != nil {
			// More may be waiting than this worker keeps up with: Serve
			// adds a socket (Grow), if it may.
			select {
			case w.s.busy <- struct{}{}:
			default:
			}
		}
		w.rxNow = time.Time{}
		resp := w.s.Responder()
		for i := range w.got {
			w.handle(resp, i)
		}
		w.answerNTS(resp)
		w.flush()
	}
	return nil
}

// The batch system calls are raw (unix.RawSyscall6): they never block
// (MSG_DONTWAIT; wait does the waiting) and return within the time the
// kernel takes to move one batch. Through syscall.Syscall the runtime would
// mark the worker in a system call, and after 20 µs hand its P to another
// thread, which on a busy core means a thread switch per batch both ways:
// measured on a pinned saturated worker, 18 % of its cycles went to
// finish_task_switch, none with raw calls. The cost is that a
// stop-the-world waits for the batch in flight (tens of microseconds).

// recv is one recvmmsg into the batch, without blocking (EAGAIN when
// nothing is queued).
func (w *worker) recv() (int, syscall.Errno) {
	b := w.b
	for i := range w.rdirty {
		h := &b.rhdr[i].hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.Controllen = oobLen
		h.Flags = 0
	}
	w.rdirty = 0
	r, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, w.fd, uintptr(unsafe.Pointer(&b.rhdr[0])), batchSize, unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		// The kernel writes a header back only for a datagram it
		// delivered, and reports a failure only when it delivered none.
		return 0, errno
	}
	w.rdirty = int(r)
	return int(r), 0
}

// handle answers datagram i of the batch, queueing the reply for the next
// sendmmsg. An NTS request is deferred (RespondOrDefer) and answered with
// the others of its chunk by answerNTS. Every reply is built in out[i],
// the buffer of its own datagram, so a deferred one never shares a buffer
// with a reply queued before it is answered.
func (w *worker) handle(resp *ntp.Responder, i int) {
	b := w.b
	rh := &b.rhdr[i]
	req := b.buf[i][:rh.len]
	c := &w.ctl
	parseControl(b.oob[i][:min(rh.hdr.Controllen, oobLen)], c)
	rx := c.rx
	if rx.IsZero() {
		if w.rxNow.IsZero() {
			w.rxNow = resp.Clock() // the clock transmit timestamps come from
		}
		rx = w.rxNow
	}
	from := sockaddrAddrPort(b.name[i][:min(rh.hdr.Namelen, unix.SizeofSockaddrInet6)])
	w.cnt.request(req)
	reply, v, deferred := resp.RespondOrDefer(b.out[i][:0], req, from, rx, w.probe.est.lead(), &b.jobs[b.njobs])
	if deferred {
		b.jobRecv[b.njobs], b.jobCtl[b.njobs], b.jobFrom[b.njobs] = i, *c, from
		if b.njobs++; b.njobs == ntsChunk {
			w.answerNTS(resp)
		}
		return
	}
	w.queue(resp, i, reply, v, from, c)
}

// answerNTS answers the deferred NTS requests in one call and queues their
// replies.
func (w *worker) answerNTS(resp *ntp.Responder) {
	b := w.b
	if b.njobs == 0 {
		return
	}
	resp.RespondNTS(b.jobs[:b.njobs])
	w.chunkAt, w.chunkSet = time.Since(w.epoch), true
	for j := range b.njobs {
		reply, v := resp.NTSResult(&b.jobs[j])
		w.queue(resp, b.jobRecv[j], reply, v, b.jobFrom[j], &b.jobCtl[j])
	}
	w.chunkSet = false
	clear(b.jobs[:b.njobs])
	b.njobs = 0
}

// queue puts the reply to datagram i in the next sendmmsg, or counts and
// logs its drop.
func (w *worker) queue(resp *ntp.Responder, i int, reply []byte, v ntp.Verdict, from netip.AddrPort, c *control) {
	b := w.b
	rh := &b.rhdr[i]
	k := w.pending
	w.resp = resp
	w.s.offerAudit(from, v)
	if v.Action == ntp.ActionDrop {
		w.cnt.record(v, false)
		w.s.logDrop(from, v)
		return
	}
	sh := &b.shdr[k].hdr
	sh.Name, sh.Namelen = rh.hdr.Name, rh.hdr.Namelen
	b.siov[k].Base = &reply[0]
	b.siov[k].SetLen(len(reply))
	sh.Control, sh.Controllen = nil, 0
	n := putReplyControl(b.soob[k][:], w.v6, c)
	if v.TxStamp && w.txStamps {
		n += putTxStampControl(b.soob[k][n:])
	}
	if n > 0 {
		sh.Control, sh.Controllen = &b.soob[k][0], uint64(n)
	}
	b.verdict[k] = v
	w.pending++
	if k == 0 {
		w.fixed = false
	}
	// The send-lag bound (maxSendLag) is for replies whose transmit
	// timestamp is final when built (NTS, keyed, interleaved): a
	// restampable reply gets its T3 again in flush, just before the send,
	// and a kiss has none. A batch of plain replies thus reads no clock
	// for the bound (it read one a batch and one a reply).
	if !w.fixed && v.Action == ntp.ActionReply && !v.Restampable() {
		w.fixed, w.oldest = true, w.since()
	}
	if w.pending == batchSize || (w.fixed && w.since()-w.oldest > w.maxLag) {
		w.flush()
	}
}

// since is the monotonic time since epoch for the send-lag bound: the
// clock, or within an NTS chunk the reading taken when it was answered.
func (w *worker) since() time.Duration {
	if w.chunkSet {
		return w.chunkAt
	}
	return time.Since(w.epoch)
}

// leadProbeable says whether a reply may probe the transmit lead: a time
// reply in basic mode that does not ask for its transmit stamp already
// (those go to the interleaved table). A kiss carries no transmit
// timestamp to recognise it by.
func leadProbeable(v ntp.Verdict) bool {
	return v.Action == ntp.ActionReply && !v.TxStamp && !v.Interleaved
}

// armProbe asks the kernel for the transmit stamp of the send's first
// reply; now is the clock read just before the send (see txlead.go).
func (w *worker) armProbe(now time.Time, reply []byte) {
	if len(reply) < ntp.HeaderLen {
		return
	}
	b := w.b
	sh := &b.shdr[0].hdr
	n := int(sh.Controllen)
	n += putTxStampControl(b.soob[0][n:])
	sh.Control, sh.Controllen = &b.soob[0][0], uint64(n)
	w.probe.arm(0, now, binary.BigEndian.Uint64(reply[40:48]))
}

// prepareSend writes the pending replies' transmit timestamps again (the
// restampable ones) and decides whether the send probes or times the
// transmit lead.
func (w *worker) prepareSend() {
	w.probe.idx = -1
	w.sendRead, w.sendKind = time.Time{}, leadNone
	if w.resp != nil {
		// One clock read for the batch, as late as the edge can: the
		// replies leave in this one system call. None for a batch with
		// nothing to restamp (NTS, keyed, kisses) unless the lead
		// (txlead.go), which moves T3 to when the reply will reach the
		// device, is probed on the send's first reply or timed on a
		// single-reply send.
		var now time.Time
		b := w.b
		lead := w.probe.est.lead()
		for k := range w.pending {
			if b.verdict[k].Restampable() {
				if now.IsZero() {
					now = w.resp.Clock()
				}
				w.resp.Restamp(unsafe.Slice(b.siov[k].Base, b.siov[k].Len), now.Add(lead))
			}
		}
		if w.txStamps && !w.s.NoTxLead && leadProbeable(b.verdict[0]) {
			// The first reply is restampable (now is read) or its T3
			// is fixed (built at oldest): when it was built is known.
			built := now
			if built.IsZero() {
				built = w.epoch.Add(w.oldest)
			}
			kind := w.probe.take(built, w.pending == 1)
			if kind != leadNone && now.IsZero() {
				now = w.resp.Clock()
			}
			if kind == leadStamp {
				w.armProbe(now, unsafe.Slice(b.siov[0].Base, b.siov[0].Len))
				if w.probe.idx != 0 {
					kind = leadNone // not armed: no stamp asked, nothing to time
				}
			}
			if w.pending == 1 && kind != leadNone {
				w.sendRead, w.sendKind = now, kind
			}
		}
	}
}

// flush sends the pending replies and counts them.
func (w *worker) flush() {
	if w.pending == 0 {
		return
	}
	w.sent = 0
	w.prepareSend()
	if !w.write() {
		// The worker was interrupted: nothing more leaves.
		for k := w.sent; k < w.pending; k++ {
			w.cnt.record(w.b.verdict[k], true)
		}
	}
	w.pending = 0
}

// write sends what is pending with sendmmsg. A reply the kernel refuses
// (it names the first one it could not send) is counted and skipped; a
// full send buffer is waited out. It returns false when the worker was
// interrupted.
func (w *worker) write() bool {
	b := w.b
	stamped := w.txWanted
	defer func() {
		// On loopback and most drivers the stamps are queued before
		// sendmmsg returns: read them now rather than at the next wake.
		if w.txWanted > stamped {
			w.drainErrQueue(w.fd)
		}
	}()
	for w.sent < w.pending {
		r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, w.fd, uintptr(unsafe.Pointer(&b.shdr[w.sent])),
			uintptr(w.pending-w.sent), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			if r == 1 && w.pending == 1 && w.sendKind != leadNone {
				w.probe.sent(w.sendKind, w.sendRead, time.Now())
				w.cnt.storeLead(&w.probe.est)
			}
			for k := w.sent; k < w.sent+int(r); k++ {
				w.cnt.record(b.verdict[k], false)
				if b.verdict[k].TxStamp && w.txStamps || k == w.probe.idx {
					w.txWanted++
				}
			}
			w.sent += int(r)
		case unix.EAGAIN:
			if !w.wait(unix.EPOLLOUT) {
				return false // interrupted
			}
			if w.epErr {
				// A full error queue is reported until read: waiting
				// for space again without reading it would spin.
				w.epErr = false
				w.drainErrQueue(w.fd)
			}
		case unix.EINTR:
		default:
			w.cnt.record(b.verdict[w.sent], true)
			w.sent++
		}
	}
	return true
}
