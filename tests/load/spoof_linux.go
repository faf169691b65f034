package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// rawSocket opens a raw IPv4 socket that sends whole datagrams we build
// (IPPROTO_RAW implies IP_HDRINCL on Linux; it is set anyway, explicitly),
// connected to dst so that plain write(2) sends.
func rawSocket(dst netip.Addr) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.IPPROTO_RAW)
	if err != nil {
		return -1, rawSocketError(err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_HDRINCL, 1); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("load: IP_HDRINCL: %w", err)
	}
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, socketBuffer)
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Addr: dst.As4()}); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("load: connect raw socket to %s: %w", dst, err)
	}
	return fd, nil
}

// rawSocketError says plainly what a refused raw socket means.
func rawSocketError(err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("load: -mode spoof needs root (CAP_NET_RAW) for a raw IPv4 socket (running as uid %d): %w", os.Geteuid(), err)
	}
	return fmt.Errorf("load: raw IPv4 socket: %w", err)
}

// runSpoof is -mode spoof.
func runSpoof(ctx context.Context, cfg Config, log io.Writer) (*Result, error) {
	target, err := loopbackTarget(cfg.Target)
	if err != nil {
		return nil, err
	}
	// Spoofed sources walk 127/8, whose replies stay on this host: loopback only.
	if !target.Addr().Is4() || !target.Addr().IsLoopback() {
		return nil, fmt.Errorf("load: -mode spoof needs an IPv4 target in 127.0.0.0/8, got %s", target)
	}
	fd, err := rawSocket(target.Addr())
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	// The replies go to 127.x.y.z:port for all our sources; binding port on
	// 0.0.0.0 makes it ours on every one of those local addresses (nobody
	// else can hold it on any of them), and lets us count the replies.
	catcher, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, fmt.Errorf("load: reply socket: %w", err)
	}
	defer catcher.Close()
	catcher.SetReadBuffer(socketBuffer)
	sport := uint16(catcher.LocalAddr().(*net.UDPAddr).Port)

	ws, err := newWorkers(1, cfg.Ring)
	if err != nil {
		return nil, err
	}
	s := startSession(cfg, ws, target.Port(), log)
	sendCtx, cancel := context.WithDeadline(ctx, s.start.Add(cfg.Duration))
	defer cancel()
	s.receive(catcher, ws[0])
	sendSpoof(sendCtx, fd, ws[0], spoofPlan{
		dst: target.Addr().As4(), dport: target.Port(), sport: sport,
		sources: uint64(cfg.Sources), total: uint64(cfg.Sources) * uint64(cfg.Rounds),
		pacer: Pacer{Rate: cfg.Rate},
	}, s.start)
	res := &Result{Mode: "spoof", Target: target.String(), Sources: cfg.Sources, Rounds: cfg.Rounds, RateTarget: cfg.Rate}
	s.end(ctx, []*net.UDPConn{catcher}, res)
	return res, nil
}

type spoofPlan struct {
	dst          [4]byte
	dport, sport uint16
	sources      uint64 // distinct addresses per round
	total        uint64 // requests in all
	pacer        Pacer
}

// sendSpoof writes plan.total requests (or until ctx ends), round after
// round over the same plan.sources addresses, up to sendBatch per system
// call.
func sendSpoof(ctx context.Context, fd int, w *worker, plan spoofPlan, start time.Time) {
	b := newBatch(sendBatch, spoofLen)
	for i := range b.lens {
		b.lens[i] = spoofLen
	}
	var walk SourceWalk
	var seq uint64
	for seq < plan.total && ctx.Err() == nil {
		elapsed := time.Since(start)
		n := plan.pacer.Due(elapsed, seq, sendBatch)
		if n == 0 {
			if wait := plan.pacer.NextAt(seq) - elapsed; wait >= minSleep {
				time.Sleep(wait)
			}
			continue
		}
		n = int(min(uint64(n), plan.total-seq))
		now := int64(time.Since(start))
		for i := range n {
			if seq%plan.sources == 0 {
				walk = SourceWalk{}
			}
			nonce := w.ring.Put(seq, rand.Uint64(), now)
			BuildSpoofed(b.bufs[i], walk.Next(), plan.dst, plan.sport, plan.dport, uint16(seq), nonce)
			seq++
		}
		w.cnt.Sent.Add(uint64(n))
		if k, _ := writeRaw(fd, b, n); k < n {
			w.cnt.SendErrors.Add(uint64(n - k))
		}
	}
}
