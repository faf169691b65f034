//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"timegate/ntp"
)

// BenchmarkWorkerBatch is the user-space part of the worker loop for a
// full batch of 64 plain requests, as recvmmsg leaves them (sockaddr,
// SO_TIMESTAMPNS and IP_PKTINFO control messages): per request, the
// control and sockaddr parsing, the counters, Respond (with EdgeRestamps,
// as the gateway builds it here) and the reply's mmsghdr, with the send at
// the end of the batch replaced by flush's restamping and bookkeeping (no
// system call), so that what callgrind counts is the
// worker's own cost per request (scripts/load.sh measures the whole path,
// kernel included). A batch that takes longer than maxSendLag (always,
// under callgrind) is sent by handle itself, to closed loopback ports.
func BenchmarkWorkerBatch(b *testing.B) {
	for _, pktinfo := range []bool{false, true} {
		b.Run(map[bool]string{false: "bound", true: "wildcard"}[pktinfo], func(b *testing.B) {
			conns, err := Listen(context.Background(), netip.MustParseAddrPort("127.0.0.1:0"), 1, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer conns[0].Close()
			st := &ntp.ServedState{Stratum: 3, RefID: 0x7f7f0101}
			resp := &ntp.Responder{State: func() *ntp.ServedState { return st }, EdgeRestamps: EdgeRestamps}
			srv := &Server{Conns: conns, Responder: func() *ntp.Responder { return resp }, Stats: &Stats{}, Log: zap.NewNop()}
			w, err := newWorker(srv, conns[0])
			if err != nil {
				b.Fatal(err)
			}
			defer w.close()
			lo := netip.AddrFrom4([4]byte{127, 0, 0, 1})
			oob := appendCmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(time.Now()))
			if pktinfo {
				oob = appendCmsg(oob, unix.IPPROTO_IP, unix.IP_PKTINFO, inPktinfo(1, lo, lo))
			}
			bt := w.b
			for i := range batchSize {
				req := ntp.ClientRequest(nil, 4, 3, ntp.Time64(i+1))
				bt.rhdr[i].len = uint32(copy(bt.buf[i][:], req))
				binary.NativeEndian.PutUint16(bt.name[i][0:], unix.AF_INET)
				binary.BigEndian.PutUint16(bt.name[i][2:], uint16(40000+i))
				copy(bt.name[i][4:], lo.AsSlice())
				bt.rhdr[i].hdr.Namelen = unix.SizeofSockaddrInet4
				bt.rhdr[i].hdr.Controllen = uint64(copy(bt.oob[i][:], oob))
			}
			// One short of a full batch: at batchSize handle sends itself;
			// and no send for lateness (under callgrind every batch is late).
			w.got = batchSize - 1
			w.maxLag = time.Hour
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n += w.got {
				w.rxNow = time.Time{}
				r := w.s.Responder()
				for i := range w.got {
					w.handle(r, i)
				}
				w.sendNothing()
			}
		})
	}
}

// sendNothing is flush without the sendmmsg: prepareSend and the counting.
func (w *worker) sendNothing() {
	w.prepareSend()
	for k := range w.pending {
		w.cnt.record(w.b.verdict[k], false)
	}
	w.pending = 0
}
