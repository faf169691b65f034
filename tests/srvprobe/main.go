// Command srvprobe measures, on loopback, the offset and delay a basic-mode
// NTP client computes to a server from kernel timestamps: its own kernel
// transmit stamp (T1) and receive stamp (T4), the server's T2 and T3. For a
// server serving this host's own clock (timegate or chronyd with `local`)
// the true offset is zero, so the median offset is the server's served-time
// error as a basic client sees it (mostly half the time between the
// server's T3 and the reply reaching the device).
//
// With a fourth argument `xleave` the requests ask for interleaved mode
// (RFC 9769, as chrony's client does) and each sample is the previous
// exchange completed with the server's kernel transmit stamp.
//
// Usage: go run ./tests/srvprobe ADDR:PORT [N] [INTERVAL] [xleave]   (loopback only)
package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"timegate/tests/kstamp"
)

const ntpEpochOffset = 2208988800

func ntpTime(b []byte) time.Time {
	s := binary.BigEndian.Uint32(b)
	f := binary.BigEndian.Uint32(b[4:])
	return time.Unix(int64(s)-ntpEpochOffset, int64((uint64(f)*1e9)>>32))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: srvprobe ADDR:PORT [N] [INTERVAL] [xleave]")
		os.Exit(2)
	}
	ap := netip.MustParseAddrPort(os.Args[1])
	if !ap.Addr().IsLoopback() {
		fmt.Fprintln(os.Stderr, "srvprobe: loopback addresses only")
		os.Exit(2)
	}
	n, every := 400, 50*time.Millisecond
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	if len(os.Args) > 3 {
		every, _ = time.ParseDuration(os.Args[3])
	}
	xleave := len(os.Args) > 4 && os.Args[4] == "xleave"
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		panic(err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING,
		unix.SOF_TIMESTAMPING_SOFTWARE|unix.SOF_TIMESTAMPING_TX_SOFTWARE|unix.SOF_TIMESTAMPING_RX_SOFTWARE|unix.SOF_TIMESTAMPING_OPT_TSONLY|unix.SOF_TIMESTAMPING_OPT_ID)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	var offs, dels []float64
	// ups and downs are T2 − T1 and T4 − T3: the two paths apart, which
	// mean something only when the server serves this host's own clock.
	var ups, downs []float64
	var stays []float64 // T3 − T2, the server's residence
	lost, basic := 0, 0
	type pair struct{ off, del float64 }
	var ps []pair
	buf, oob := make([]byte, 128), make([]byte, 256)
	// Interleaved mode: the previous exchange's stamps and the receive
	// field of its reply, which the next request echoes as its origin.
	var prevT1, prevT4 time.Time
	var prevRx uint64
	for i := range n {
		req := make([]byte, 48)
		req[0] = 0x23
		binary.BigEndian.PutUint64(req[40:], uint64(i+1)<<20|0x5a5a)
		if xleave && prevRx != 0 {
			binary.BigEndian.PutUint64(req[24:], prevRx)
			binary.BigEndian.PutUint64(req[32:], uint64(i+1)<<20|0xa5a5)
		}
		if err := unix.Sendto(fd, req, 0, sa); err != nil {
			panic(err)
		}
		m, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
		interleaved := m >= 48 && prevRx != 0 && binary.BigEndian.Uint64(buf[24:]) == binary.BigEndian.Uint64(req[32:])
		if err != nil || m < 48 || !interleaved && binary.BigEndian.Uint64(buf[24:]) != binary.BigEndian.Uint64(req[40:]) {
			lost++
			prevRx = 0
			continue
		}
		t4, ok4 := kstamp.Time(oob[:oobn])
		// The request's own transmit stamp: OPT_ID numbers the datagrams
		// sent from 0, so a stamp left over from an earlier exchange is
		// not taken for this one's.
		var t1 time.Time
		for {
			_, eoobn, _, _, err := unix.Recvmsg(fd, make([]byte, 8), oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				break
			}
			if ts, ok := kstamp.Time(oob[:eoobn]); ok {
				if id, idOK := kstamp.ErrID(oob[:eoobn]); !idOK || id != uint32(i) {
					continue
				}
				t1 = ts
			}
		}
		if !ok4 || t1.IsZero() {
			lost++
			prevRx = 0
			continue
		}
		t2, t3 := ntpTime(buf[32:]), ntpTime(buf[40:])
		if xleave {
			// This reply completes the previous exchange (its T3 is the
			// previous reply's kernel transmit stamp); a basic one gives
			// no interleaved sample.
			ok := interleaved
			var pt1, pt4 time.Time
			var pt2 time.Time
			if ok {
				pt1, pt4, pt2 = prevT1, prevT4, ntpTime(binary.BigEndian.AppendUint64(nil, prevRx))
			}
			prevT1, prevT4, prevRx = t1, t4, binary.BigEndian.Uint64(buf[32:])
			if !ok {
				basic++
				continue
			}
			t1, t2, t4 = pt1, pt2, pt4
		}
		off := (float64(t2.Sub(t1)) + float64(t3.Sub(t4))) / 2e3
		del := (float64(t4.Sub(t1)) - float64(t3.Sub(t2))) / 1e3
		offs, dels = append(offs, off), append(dels, del)
		ups, downs = append(ups, float64(t2.Sub(t1))/1e3), append(downs, float64(t4.Sub(t3))/1e3)
		stays = append(stays, float64(t3.Sub(t2))/1e3)
		ps = append(ps, pair{off, del})
		time.Sleep(every)
	}
	if len(ps) == 0 {
		fmt.Println("no samples")
		os.Exit(1)
	}
	sort.Float64s(offs)
	sort.Float64s(dels)
	sort.Float64s(ups)
	sort.Float64s(downs)
	sort.Float64s(stays)
	sort.Slice(ps, func(i, j int) bool { return ps[i].del < ps[j].del })
	q := ps[:max(1, len(ps)/4)]
	qo := make([]float64, len(q))
	for i, p := range q {
		qo[i] = p.off
	}
	sort.Float64s(qo)
	pc := func(v []float64, p int) float64 { return v[len(v)*p/100] }
	if xleave {
		fmt.Printf("xleave (%d basic) ", basic)
	}
	fmt.Printf("%s lost %d n %d offset median %+.2f µs (lowest-delay quarter %+.2f) delay median %.2f p10 %.2f; T2-T1 p10/50 %.2f/%.2f T4-T3 p1/10/50 %.2f/%.2f/%.2f; T3-T2 p50/90 %.1f/%.1f µs\n",
		ap, lost, len(ps), offs[len(offs)/2], qo[len(qo)/2], pc(dels, 50), pc(dels, 10), pc(ups, 10), pc(ups, 50), pc(downs, 1), pc(downs, 10), pc(downs, 50), pc(stays, 50), pc(stays, 90))
}
