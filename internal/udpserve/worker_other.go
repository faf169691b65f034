//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le))

package udpserve

import (
	"context"
	"net"
	"syscall"
	"time"

	"timegate/internal/sockstamp"
	"timegate/ntp"
)

// EdgeRestamps is false: this worker sends each reply as Respond made it,
// so the responder must stamp every one (ntp.Responder.EdgeRestamps).
const EdgeRestamps = false

// worker reads one socket a datagram at a time: the portable path, without
// batching and without answering from the request's destination address
// (the kernel chooses the source).
type worker struct {
	s      *Server
	c      *net.UDPConn
	cnt    *counters
	drops  *sockDrops // nil where the kernel's drops cannot be read
	stamps bool
}

// enableControl is sockstamp.Enable's job here, done per worker.
func enableControl(syscall.RawConn, bool) {}

func newWorker(s *Server, c *net.UDPConn) (*worker, error) {
	w := &worker{s: s, c: c, cnt: s.Stats.worker(), stamps: sockstamp.Enable(c) == nil}
	if read := connDrops(c); read != nil {
		w.drops = s.Stats.socket(read)
	}
	return w, nil
}

// interrupt ends a blocked read (Serve's stop).
func (w *worker) interrupt() { w.c.Close() }

// close releases the socket, its drop count taken first.
func (w *worker) close() {
	if w.drops != nil {
		w.drops.retire()
	}
	w.c.Close()
}

func (w *worker) run(ctx context.Context) error {
	buf := make([]byte, bufSize)
	out := make([]byte, 0, bufSize)
	oob := make([]byte, sockstamp.OOBSize)
	for {
		n, oobn, _, from, err := w.c.ReadMsgUDPAddrPort(buf, oob)
		rx := time.Now()
		if err != nil {
			if err := w.s.readError(ctx, err); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			continue
		}
		if t, ok := sockstamp.Time(oob[:oobn]); ok {
			rx = t
		}
		w.cnt.request(buf[:n])
		reply, v := w.s.Responder().Respond(out, buf[:n], from, rx)
		w.s.offerAudit(from, v)
		if v.Action == ntp.ActionDrop {
			w.cnt.record(v, false)
			w.s.logDrop(from, v)
			continue
		}
		_, err = w.c.WriteToUDPAddrPort(reply, from)
		w.cnt.record(v, err != nil)
	}
}

// CanGrow is false: Grow needs the batch path's full-batch signal.
func CanGrow(int) bool { return false }
