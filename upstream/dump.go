package upstream

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Dump limits.
const (
	// MaxSampleAge: a dumped sample older than this when restored is dropped. Its
	// dispersion has grown by PHI·age (54 ms an hour) anyway, and after an hour a
	// restart's iburst learns more in seconds than the old samples still say.
	MaxSampleAge = time.Hour
	// MaxDumpFileSize bounds what is read of a dump file: a header, the source line, the
	// saved time, the packet header and NStage samples fit in well under 1 KiB.
	MaxDumpFileSize = 2048
	// maxDumpKey bounds the source identity a dump file names.
	maxDumpKey = 300
)

const dumpHeader = "# timegate dump 1: one source's clock filter (chrony's dumpdir), unix ns"

// ErrDumpFormat: the file is not a timegate dump file, or is damaged.
var ErrDumpFormat = errors.New("upstream: not a timegate dump file")

// SourceDump is the state of one source kept across a restart (chrony's dumpdir): its
// clock filter register and the header of its latest packet, so that after a restart the
// source is selectable at once instead of after its first few polls.
type SourceDump struct {
	// Key names the association the samples belong to: its address and how it is
	// authenticated, so that samples are never restored into another server, nor
	// samples taken without authentication into an authenticated association.
	Key string
	// Saved is when the register was last shifted; every sample's dispersion is as of it.
	Saved time.Time
	// The latest packet's header fields.
	Stratum        uint8
	Leap           Leap
	RootDelay      time.Duration
	RootDispersion time.Duration
	// Samples are the register's real stages, newest first (Time, Offset, Delay and
	// Dispersion set), at most NStage.
	Samples []Sample
}

// Dump returns the source's state to keep across a restart under key, and false when
// there is nothing worth keeping: no sample, a stopped source, or a server that said it
// is unsynchronised.
func (s *Source) Dump(key string) (SourceDump, bool) {
	f := &s.filter
	if s.stopped != "" || s.unsynced || !f.have {
		return SourceDump{}, false
	}
	d := SourceDump{Key: key, Saved: f.updated, Stratum: f.hdr.Stratum, Leap: f.hdr.Leap,
		RootDelay: f.hdr.RootDelay, RootDispersion: f.hdr.RootDispersion}
	for _, st := range f.reg {
		if st.valid {
			d.Samples = append(d.Samples, Sample{Time: st.t, Offset: dur(st.offset), Delay: dur(st.delay), Dispersion: dur(st.disp)})
		}
	}
	return d, len(d.Samples) > 0
}

// Restore loads a dump into a source that has not taken a sample yet, at local time now,
// and returns how many samples it kept. Samples older than MaxSampleAge or from the
// future are dropped; the register's age counts from d.Saved, so the dispersion the
// source offers selection includes PHI times the downtime, as if the process had never
// stopped. The reach register gets one bit, the previous run's last answer: the source is
// selectable at once, and drops out after eight unanswered polls like any other.
func (s *Source) Restore(d SourceDump, now time.Time) int {
	if s.stats.Accepted > 0 || s.stopped != "" || d.Leap == LeapUnsynch || d.Stratum == 0 ||
		d.Stratum >= MaxStratum || d.Saved.After(now) {
		return 0
	}
	f := &s.filter
	n := 0
	for _, smp := range d.Samples {
		if n == NStage || now.Sub(smp.Time) > MaxSampleAge || smp.Time.After(d.Saved) {
			continue
		}
		f.reg[n] = stage{offset: smp.Offset.Seconds(), delay: smp.Delay.Seconds(),
			disp: min(max(smp.Dispersion.Seconds(), 0), MaxDisp.Seconds()), t: smp.Time, valid: true}
		n++
	}
	if n == 0 {
		return 0
	}
	f.updated = d.Saved
	f.hdr = Sample{Stratum: d.Stratum, Leap: d.Leap, RootDelay: d.RootDelay, RootDispersion: d.RootDispersion}
	if f.evaluate(0) != Accepted {
		*f = Filter{Precision: f.Precision}
		return 0
	}
	s.reach = 1
	return n
}

// AppendText appends the dump file's contents.
func (d SourceDump) AppendText(b []byte) ([]byte, error) {
	b = fmt.Appendf(b, "%s\nsource %s\nsaved %d\nheader %d %d %d %d\n", dumpHeader, d.Key, d.Saved.UnixNano(),
		d.Stratum, d.Leap, d.RootDelay, d.RootDispersion)
	for _, s := range d.Samples {
		b = fmt.Appendf(b, "sample %d %d %d %d\n", s.Time.UnixNano(), s.Offset, s.Delay, s.Dispersion)
	}
	return b, nil
}

// ParseSourceDump reads a dump file's contents, strictly: anything but exactly the form
// AppendText writes is refused.
func ParseSourceDump(data []byte) (SourceDump, error) {
	var d SourceDump
	if len(data) > MaxDumpFileSize {
		return d, fmt.Errorf("%w: %d bytes", ErrDumpFormat, len(data))
	}
	text, ok := strings.CutSuffix(string(data), "\n")
	lines := strings.Split(text, "\n")
	if !ok || len(lines) < 4 || len(lines) > 4+NStage || lines[0] != dumpHeader {
		return d, fmt.Errorf("%w: want the header, source, saved and header lines and up to %d samples", ErrDumpFormat, NStage)
	}
	key, ok := strings.CutPrefix(lines[1], "source ")
	if !ok || key == "" || len(key) > maxDumpKey || strings.ContainsFunc(key, isControl) {
		return d, fmt.Errorf("%w: bad source line", ErrDumpFormat)
	}
	d.Key = key
	saved, err := ints(lines[2], "saved", 1)
	if err != nil {
		return d, err
	}
	hdr, err := ints(lines[3], "header", 4)
	if err != nil {
		return d, err
	}
	if hdr[0] < 0 || hdr[0] > int64(MaxStratum) || hdr[1] < 0 || hdr[1] > 3 {
		return d, fmt.Errorf("%w: header out of range", ErrDumpFormat)
	}
	d.Saved = time.Unix(0, saved[0])
	d.Stratum, d.Leap = uint8(hdr[0]), Leap(hdr[1])
	d.RootDelay, d.RootDispersion = time.Duration(hdr[2]), time.Duration(hdr[3])
	for _, l := range lines[4:] {
		v, err := ints(l, "sample", 4)
		if err != nil {
			return d, err
		}
		d.Samples = append(d.Samples, Sample{Time: time.Unix(0, v[0]), Offset: time.Duration(v[1]),
			Delay: time.Duration(v[2]), Dispersion: time.Duration(v[3])})
	}
	return d, nil
}

// ints parses "word N1 N2 ..." with exactly n integers.
func ints(line, word string, n int) ([]int64, error) {
	f := strings.Split(line, " ")
	if len(f) != n+1 || f[0] != word {
		return nil, fmt.Errorf("%w: want %q with %d numbers", ErrDumpFormat, word, n)
	}
	out := make([]int64, n)
	for i, s := range f[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDumpFormat, err)
		}
		// One spelling per number ("00", "+1" and "-0" are refused), so that a file
		// is either exactly what AppendText writes or refused.
		if strconv.FormatInt(v, 10) != s {
			return nil, fmt.Errorf("%w: %q is not a plain integer", ErrDumpFormat, s)
		}
		out[i] = v
	}
	return out, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
