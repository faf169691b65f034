package engine

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"timegate/internal/config"
	"timegate/upstream"
)

// chrony's log file banners (chrony 4.x ntp_core.c, sourcestats.c, reference.c), so that
// tools that read chrony's logs read timegate's.
const (
	measurementsBanner = "   Date (UTC) Time     IP Address   L St 123 567 ABCD  LP RP Score    Offset  Peer del. Peer disp.  Root del. Root disp. Refid     MTxRx"
	statisticsBanner   = "   Date (UTC) Time     IP Address    Std dev'n Est offset  Offset sd  Diff freq   Est skew  Stress  Ns  Bs  Nr  Asym"
	trackingBanner     = "   Date (UTC) Time     IP Address   St   Freq ppm   Skew ppm     Offset L Co  Offset sd Rem. corr. Root delay Root disp. Max. error"
	// logBanner is chrony's default logbanner: the banner is repeated every 32 lines.
	logBanner = 32
	// logTimeForm is chrony's UTI_TimeToLogForm.
	logTimeForm = "2006-01-02 15:04:05"
)

// logFile is one of chrony's log files, opened on its first line for appending only. A
// file renamed away (logrotate without copytruncate) is noticed at the next line and a
// new one started; a file that cannot be opened disables that log with one warning, as
// chronyd does.
type logFile struct {
	name, banner string
	on           bool
	f            *os.File
	lines        int
}

// logFiles are the configured logs; the loop goroutine owns them.
type logFiles struct {
	dir                string
	meas, stats, track logFile
}

func newLogFiles(dir string, want config.LogFiles) logFiles {
	return logFiles{dir: dir,
		meas:  logFile{name: "measurements", banner: measurementsBanner, on: want.Measurements},
		stats: logFile{name: "statistics", banner: statisticsBanner, on: want.Statistics},
		track: logFile{name: "tracking", banner: trackingBanner, on: want.Tracking},
	}
}

func (l *logFile) write(dir string, log *zap.Logger, line string) {
	if !l.on || dir == "" {
		return
	}
	path := filepath.Join(dir, l.name+".log")
	if l.f != nil && !sameFile(l.f, path) {
		l.f.Close()
		l.f, l.lines = nil, 0
	}
	if l.f == nil {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			log.Warn("log file disabled", zap.String("log", l.name), zap.Error(err))
			l.on = false
			return
		}
		l.f = f
	}
	text := line + "\n"
	if l.lines%logBanner == 0 {
		rule := make([]byte, len(l.banner))
		for i := range rule {
			rule[i] = '='
		}
		text = fmt.Sprintf("%s\n%s\n%s\n%s", rule, l.banner, rule, text)
	}
	l.lines++
	if _, err := l.f.WriteString(text); err != nil {
		log.Warn("log file write failed", zap.String("log", l.name), zap.Error(err))
	}
}

// sameFile reports whether path still names the open file.
func sameFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

func (l *logFiles) close() {
	for _, f := range []*logFile{&l.meas, &l.stats, &l.track} {
		if f.f != nil {
			f.f.Close()
			f.f = nil
		}
	}
}

// servedBase is how far the served clock is from the local timescale that samples are
// measured in, at system time sys: a sample's offset less this is the source's distance
// from the time timegate serves, the "local clock" of chrony's logs. Without it the logs
// showed every source's distance from the system clock, which timegate does not steer,
// and in %.3e a microsecond behind a 0.5 s system clock error was lost.
func (r *runner) servedBase(sys time.Time) time.Duration {
	return r.clock.Now(sys).Sub(r.clock.Local(sys))
}

func leapChar(l upstream.Leap) byte {
	return "N+-?"[l&3]
}

// logMeasurement writes the sample a reply just gave (chrony's measurements.log; only
// valid, authentic samples reach this point, so the test columns are all 1). Score is
// 0.00: timegate's poll adaptation has no such score. MTxRx says, as chrony's does, the
// mode (B basic, I interleaved) and whether the request's transmit and the reply's
// receive time came from the kernel (K) or the daemon (D). Offset is against the served
// clock, as chrony's is against its own (see servedBase).
func (r *runner) logMeasurement(a *assoc, pkt []byte, kernelTx, kernelRx bool, base time.Duration) {
	if !r.logs.meas.on || len(pkt) < 16 {
		return
	}
	s := a.src.LastSample()
	mode, tx, rx := byte('B'), byte('D'), byte('D')
	if a.src.Interleaved() {
		mode = 'I'
	}
	if kernelTx {
		tx = 'K'
	}
	if kernelRx {
		rx = 'K'
	}
	refid := uint32(pkt[12])<<24 | uint32(pkt[13])<<16 | uint32(pkt[14])<<8 | uint32(pkt[15])
	r.logs.meas.write(r.logs.dir, r.log, fmt.Sprintf("%s %-15s %c %2d 111 111 1111  %2d %2d %4.2f %10.3e %10.3e %10.3e %10.3e %10.3e %08X 4%c %c %c",
		s.Time.UTC().Format(logTimeForm), a.addr.Addr(), leapChar(s.Leap), s.Stratum, a.src.Poll(), int8(pkt[2]), 0.0,
		(s.Offset-base).Seconds(), s.Delay.Seconds(), s.Dispersion.Seconds(), s.RootDelay.Seconds(), s.RootDispersion.Seconds(), refid, mode, tx, rx))
}

// logStatistics writes a source's clock filter output after it took a sample (chrony's
// statistics.log). timegate filters each source (RFC 5905 §10) rather than fitting a
// regression per source, so: Std dev'n is the filter jitter ψ, Est offset the filter's
// offset θ, Offset sd its dispersion ε, Diff freq 0, Est skew PHI (the frequency
// tolerance RFC 5905 assumes of every source), Stress 0, Ns the samples in the register,
// Bs, Nr and Asym 0. Est offset is against the served clock, like measurements.log's.
func (r *runner) logStatistics(a *assoc, base time.Duration) {
	st, ok := a.src.FilterStats()
	if !r.logs.stats.on || !ok {
		return
	}
	r.logs.stats.write(r.logs.dir, r.log, fmt.Sprintf("%s %-15s %10.3e %10.3e %10.3e %10.3e %10.3e %7.1e %3d %3d %3d %5.2f",
		st.Epoch.UTC().Format(logTimeForm), a.addr.Addr(), st.Jitter.Seconds(), (st.Offset-base).Seconds(), st.Dispersion.Seconds(),
		0.0, upstream.PHI, 0.0, st.Samples, 0, 0, 0.0))
}

// logTracking writes one soft clock update (chrony's tracking.log): the system peer's
// address, the served stratum, the frequency and skew, Offset the estimate's distance
// from the served clock before the update (all of it still to slew in, so Rem. corr. is
// the same), the leap code, the sources combined, the estimate's jitter, the root delay
// and dispersion, and Max. error = root distance + |offset|.
func (r *runner) logTracking(sys time.Time, before, after *upstream.Status) {
	if !r.logs.track.on || !r.res.OK() {
		return
	}
	est := r.res.Estimate
	peer := "?"
	if i := est.Peer; i >= 0 && i < len(r.cands) {
		peer = r.cands[i].addr.Addr().String()
	}
	off := (est.Offset - before.Offset).Seconds()
	maxErr := (after.RootDelay/2 + after.RootDispersion).Seconds() + math.Abs(off)
	r.logs.track.write(r.logs.dir, r.log, fmt.Sprintf("%s %-15s %2d %10.3f %10.3f %10.3e %c %2d %10.3e %10.3e %10.3e %10.3e %10.3e",
		sys.UTC().Format(logTimeForm), peer, after.Stratum, after.Frequency*1e6, after.Skew*1e6, off,
		leapChar(after.Leap), est.Survivors, est.Jitter.Seconds(), off, after.RootDelay.Seconds(),
		after.RootDispersion.Seconds(), maxErr))
}
