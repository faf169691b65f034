package engine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"

	"timegate/internal/config"
	"timegate/internal/sockstamp"
	"timegate/ntp"
	"timegate/nts"
	"timegate/upstream"
)

// assoc is one association: a server line, or one address of a pool.
type assoc struct {
	spec config.Source
	id   uint64
	auth upstream.Auth // nil for NTS (it comes from NTS-KE) and before resolution
	src  *upstream.Source
	addr netip.AddrPort // where NTP requests go; zero until resolved or keyed
	// keIP is the NTS-KE server's address for one address of an NTS pool:
	// each gets its own KE session there (the certificate is still checked
	// against the pool's name), as chronyd does. Zero: dial the host name.
	keIP netip.Addr

	due          time.Time // when the next poll is due (engine clock); zero when none is
	reqID        uint64    // the request whose answers are still wanted
	out          outstanding
	resolveFails int

	// What `gatectl sources` shows beyond the state machine's own view.
	keAt       time.Time // system time of the last successful NTS-KE
	keErr      string    // the last NTS-KE failure, cleared by a success
	rxAt       time.Time // system time of the last accepted reply
	resolveErr string    // the last failed name lookup
	// removed: a reload dropped the line; events still in flight for it are ignored.
	removed bool
	// What the audit trail was last told: kisses acted upon, reachable.
	auditKisses    uint64
	auditReachable bool
}

func (a *assoc) authenticated() bool { return a.spec.NTS || a.spec.KeyID != 0 }

func (a *assoc) String() string {
	if !a.addr.IsValid() && a.keIP.IsValid() {
		return a.spec.Host + " (" + a.keIP.String() + ")"
	}
	if a.addr.IsValid() && a.addr.Addr().String() != a.spec.Host {
		return a.spec.Host + " (" + a.addr.String() + ")"
	}
	if a.addr.IsValid() {
		return a.addr.String()
	}
	return a.spec.Host
}

// stopTimer cancels the next poll.
func (a *assoc) stopTimer() { a.due = time.Time{} }

// sourceConfig is the state machine's configuration for this association.
func (r *runner) sourceConfig(a *assoc) upstream.SourceConfig {
	cfg := upstream.SourceConfig{
		ID: a.id, MinPoll: int8(a.spec.MinPoll), MaxPoll: int8(a.spec.MaxPoll),
		IBurst: a.spec.IBurst, Prefer: a.spec.Prefer, Trust: a.spec.Trust, Require: a.spec.Require, Auth: a.auth, NTS: a.spec.NTS,
		Precision: precisionDur(r.opts.Precision), Rand: r.opts.Rand, MaxDelay: a.spec.MaxDelay,
		Interleaved: a.spec.XLeave,
	}
	if a.addr.IsValid() {
		cfg.RefID = upstream.RefIDForAddr(a.addr.Addr())
	}
	return cfg
}

func precisionDur(p int8) time.Duration {
	p = min(max(p, -30), 0)
	return time.Second >> uint(-p)
}

// start begins an association: NTS servers go straight to NTS-KE (the KE server names
// the NTP server); the others, NTS pools among them, first resolve their host.
func (r *runner) start(a *assoc) {
	if a.spec.NTS && !a.spec.Pool {
		a.src = upstream.NewSource(r.sourceConfig(a))
		r.restoreDump(a, r.clock.Local(r.now()))
		r.wake(a, 0) // placed apart from the other sources' first polls
		return
	}
	if ip, err := netip.ParseAddr(a.spec.Host); err == nil {
		r.resolved(resolvedEvent{a: a, addrs: []netip.Addr{ip}})
		return
	}
	r.resolve(a, 0)
}

// resolve looks the host up after wait, in the background.
func (r *runner) resolve(a *assoc, wait time.Duration) {
	host := a.spec.Host
	r.goTrack(func() {
		select {
		case <-time.After(wait):
		case <-r.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(r.ctx, resolveTimeout)
		defer cancel()
		addrs, err := r.resolver().LookupNetIP(ctx, "ip", host)
		r.post(resolvedEvent{a: a, addrs: addrs, err: err})
	})
}

// resolved starts polling the address(es) of a name; a pool name yields up to poolSize
// associations. A failed lookup is retried with a doubling wait.
func (r *runner) resolved(ev resolvedEvent) {
	a := ev.a
	if ev.err != nil || len(ev.addrs) == 0 {
		a.resolveFails++
		a.resolveErr = "cannot resolve"
		if ev.err != nil {
			a.resolveErr = ev.err.Error()
		}
		wait := min(resolveRetryMin<<min(a.resolveFails-1, 10), resolveRetryMax)
		r.log.Warn("cannot resolve source", zap.String("source", a.spec.Host), zap.Error(ev.err), zap.Duration("retry_in", wait))
		r.auditSourceDown(a.spec.Host, "resolve", fmt.Sprint(ev.err))
		r.resolve(a, wait)
		return
	}
	addrs := ev.addrs
	if !a.spec.Pool {
		addrs = addrs[:1]
	}
	n := poolSize
	if a.spec.MaxSources != 0 {
		n = a.spec.MaxSources
	}
	for i, ip := range addrs[:min(len(addrs), n)] {
		b := a
		if i > 0 {
			b = &assoc{spec: a.spec, auth: a.auth, id: r.newID()}
			r.assocs = append(r.assocs, b)
		}
		if a.spec.NTS {
			b.keIP = ip.Unmap() // the NTP address comes from NTS-KE
		} else {
			b.addr = netip.AddrPortFrom(ip.Unmap(), uint16(a.spec.Port))
		}
		b.src = upstream.NewSource(r.sourceConfig(b))
		r.log.Info("polling source", zap.String("source", b.String()), zap.Bool("authenticated", b.authenticated()))
		r.restoreDump(b, r.clock.Local(r.now()))
		r.wake(b, 0)
	}
}

// request sends one packet from a fresh socket connected to the source — a new random
// source port per request (RFC 9109 §3), and the kernel drops datagrams from any other
// address — and hands every datagram received to the loop until the loop says the
// request is answered, or the timeout passes. The send time is read just before the
// write, the receive time just after the read; where the kernel stamps the datagrams,
// its transmit and receive times replace both.
func (r *runner) request(a *assoc, id uint64, pkt []byte, timeout time.Duration) {
	addr := a.addr.String()
	r.goTrack(func() {
		conn, err := r.dialer().DialContext(r.ctx, "udp", addr)
		if err != nil {
			r.log.Debug("request socket", zap.String("source", addr), zap.Error(err))
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(timeout))
		rd := r.reader(conn)
		sent := r.now()
		if _, err := conn.Write(pkt); err != nil {
			return
		}
		kernelSent := rd.sent(&sent)
		buf := make([]byte, ntp.MaxPacketLen+1)
		for {
			n, rx, kernel, err := rd.read(buf)
			if err != nil {
				return
			}
			if n > ntp.MaxPacketLen {
				continue
			}
			if !kernelSent {
				kernelSent = rd.sent(&sent)
			}
			done := make(chan bool, 1)
			if !r.post(replyEvent{a: a, req: id, pkt: append([]byte(nil), buf[:n]...), sent: sent, rx: rx, kernelTx: kernelSent, kernelRx: kernel, done: done}) {
				return
			}
			select {
			case fin := <-done:
				if fin {
					return
				}
			case <-r.ctx.Done():
				return
			}
		}
	})
}

// stampedReader reads replies with the kernel's receive timestamp (T4)
// where the socket can give one, else the time just after the read.
type stampedReader struct {
	conn net.Conn
	udp  *net.UDPConn // set when kernel stamps are on
	oob  []byte
	now  func() time.Time
	tx   bool // kernel transmit stamps are on
}

// reader stamps with the kernel only on real sockets read against the real
// clock: an injected clock (tests) and the kernel's would disagree.
func (r *runner) reader(conn net.Conn) stampedReader {
	rd := stampedReader{conn: conn, now: r.now}
	if uc, ok := conn.(*net.UDPConn); ok && r.opts.Now == nil && sockstamp.Enable(uc) == nil {
		rd.udp, rd.oob = uc, make([]byte, sockstamp.OOBSize)
		rd.tx = sockstamp.EnableTx(uc) == nil
	}
	return rd
}

// maxTxDelay is chrony's MAX_TX_DELAY: a kernel transmit time more than this after the
// clock reading before the send, or before it, is not this datagram's.
const maxTxDelay = time.Second

// sent replaces *daemon, the time read just before the send, by the kernel's transmit
// timestamp of the request when the error queue has it, and reports whether it did.
func (rd stampedReader) sent(daemon *time.Time) bool {
	if !rd.tx {
		return false
	}
	t, err := sockstamp.TxTime(rd.udp)
	return err == nil && takeTxStamp(daemon, t)
}

// takeTxStamp replaces *daemon by kernel, a transmit stamp from the error queue, unless
// it cannot be this request's (maxTxDelay), and reports whether it did.
func takeTxStamp(daemon *time.Time, kernel time.Time) bool {
	if d := kernel.Sub(*daemon); d < 0 || d > maxTxDelay {
		return false
	}
	*daemon = kernel
	return true
}

// read returns the datagram's length, its receive time, and whether the kernel stamped
// it (measurements.log says which).
func (rd stampedReader) read(buf []byte) (int, time.Time, bool, error) {
	if rd.udp == nil {
		n, err := rd.conn.Read(buf)
		return n, rd.now(), false, err
	}
	n, oobn, _, _, err := rd.udp.ReadMsgUDP(buf, rd.oob)
	if t, ok := sockstamp.Time(rd.oob[:oobn]); ok {
		return n, t, true, err
	}
	return n, rd.now(), false, err
}

// rekey runs NTS-KE with the source's KE server in the background and resolves the NTP
// server it names (RFC 8915 §4.1.7: the KE server's own address when it names none).
func (r *runner) rekey(a *assoc) {
	host := a.spec.Host
	conf := r.tls.Clone()
	if a.keIP.IsValid() {
		host, conf.ServerName = a.keIP.String(), a.spec.Host
	}
	addr := net.JoinHostPort(host, strconv.Itoa(a.spec.NTSPort))
	ke := r.keFunc()
	r.goTrack(func() {
		ctx, cancel := context.WithTimeout(r.ctx, keTimeout)
		defer cancel()
		res, err := ke(ctx, addr, conf)
		var ntpAddr netip.AddrPort
		if err == nil {
			ntpAddr, err = r.lookupNTP(ctx, res)
		}
		r.post(keEvent{a: a, res: res, addr: ntpAddr, err: err})
	})
}

func (r *runner) lookupNTP(ctx context.Context, res *nts.KEResult) (netip.AddrPort, error) {
	ip, err := netip.ParseAddr(res.NTPServer)
	if err != nil {
		ips, lerr := r.resolver().LookupNetIP(ctx, "ip", res.NTPServer)
		if lerr != nil {
			return netip.AddrPort{}, lerr
		}
		if len(ips) == 0 {
			return netip.AddrPort{}, &net.DNSError{Err: "no address", Name: res.NTPServer}
		}
		ip = ips[0]
	}
	return netip.AddrPortFrom(ip.Unmap(), res.NTPPort), nil
}

// keyed hands the outcome of NTS-KE to the source.
func (r *runner) keyed(ev keEvent, local time.Time) {
	a := ev.a
	var auth upstream.Auth
	err := ev.err
	if err == nil {
		var s *nts.ClientSession
		if s, err = nts.NewClientSession(ev.res); err == nil {
			auth = upstream.NTSAuth{Session: s}
		}
	}
	if err != nil {
		r.log.Warn("NTS-KE failed", zap.String("source", a.String()), zap.Error(err))
		a.keErr = err.Error()
		r.auditSourceDown(a.spec.Host, "nts-ke", err.Error())
		r.apply(a, a.src.HandleRekey(local, nil, 0, err))
		return
	}
	a.addr = ev.addr
	a.keAt, a.keErr = r.now(), ""
	r.log.Info("NTS-KE done", zap.String("source", a.String()), zap.Stringer("ntp_server", ev.addr),
		zap.Uint16("aead", ev.res.AEAD), zap.Int("cookies", len(ev.res.Cookies)))
	r.apply(a, a.src.HandleRekey(local, auth, upstream.RefIDForAddr(ev.addr.Addr()), nil))
}
