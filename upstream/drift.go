package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Drift file limits and aging.
const (
	// DriftAging is how fast a saved frequency estimate loses value: 1 ppm per hour of
	// age. A crystal's frequency moves about 0.1–1 ppm per °C, and a host that was off
	// for an hour may have cooled by several degrees; over the minute or two the clock
	// runs on the saved frequency before it fits its own, this still claims far less
	// than the cold-start DefaultMaxFreq, yet never less than the file deserves.
	DriftAging = 1e-6 / 3600
	// MinSkew is the least uncertainty ever claimed for a frequency (0.01 ppm): a fit
	// over sixteen noisy estimates knows no better, whatever its residuals say.
	MinSkew = 1e-8
	// MaxDriftAge: an older drift file is ignored. After a week the temperature, the
	// hardware or the kernel may all have changed; learning afresh costs a minute.
	MaxDriftAge = 7 * 24 * time.Hour
	// maxDriftFuture tolerates a file time slightly ahead of the clock reading it
	// (clock noise across a restart); a file further ahead means the system clock was
	// stepped back or the file was forged, and is not trusted.
	maxDriftFuture = time.Minute
	// MaxDriftFileSize bounds what is read of a drift file: ours is one comment line and
	// one line of three numbers, so anything larger is not one.
	MaxDriftFileSize = 512
)

// driftHeader is the first line of timegate's drift file. chronyd's drift file holds the
// system clock's frequency correction ("freq-ppm skew-ppm" on one line); timegate's holds
// the soft clock's frequency relative to the system clock, which is a different quantity
// (zero on a host whose system clock chronyd disciplines). The header tells them apart,
// and makes chronyd refuse timegate's file in turn rather than misread it.
const driftHeader = "# timegate driftfile 1: soft-clock frequency (ppm) relative to the system clock, skew (ppm), unix time of the estimate"

// Errors of ParseDrift and Drift.Uncertainty.
var (
	ErrDriftFormat = errors.New("upstream: not a timegate drift file")
	// ErrDriftChrony: the file is chronyd's or ntpd's (the system clock's frequency, a
	// different quantity): it is not used, and is replaced by timegate's own at the next
	// save.
	ErrDriftChrony = errors.New("upstream: drift file written by chronyd or ntpd (the system clock's frequency), not by timegate")
	ErrDriftStale  = errors.New("upstream: drift file too old or from the future")
	ErrDriftValue  = errors.New("upstream: implausible drift file values")
)

// Drift is the soft clock's frequency estimate as a drift file keeps it across restarts
// (chrony's driftfile): the frequency, its uncertainty and when it was estimated.
type Drift struct {
	Freq float64   // served − local rate (s/s), as Status.Frequency
	Skew float64   // uncertainty of Freq (s/s) when it was estimated
	At   time.Time // when it was estimated
}

// Uncertainty returns the drift's skew grown by DriftAging over its age at now, and an
// error when the estimate should not be used at all: older than MaxDriftAge, from the
// future, a frequency beyond maxFreq, or an uncertainty no better than the cold start's.
func (d Drift) Uncertainty(now time.Time, maxFreq float64) (float64, error) {
	age := now.Sub(d.At)
	switch {
	case age < -maxDriftFuture:
		return 0, fmt.Errorf("%w: estimated %v in the future", ErrDriftStale, -age.Round(time.Second))
	case age > MaxDriftAge:
		return 0, fmt.Errorf("%w: estimated %v ago (limit %v)", ErrDriftStale, age.Round(time.Second), MaxDriftAge)
	case !finite(d.Freq) || math.Abs(d.Freq) > maxFreq:
		return 0, fmt.Errorf("%w: frequency %.3f ppm beyond ±%.0f ppm", ErrDriftValue, d.Freq*1e6, maxFreq*1e6)
	case !finite(d.Skew) || d.Skew < 0:
		return 0, fmt.Errorf("%w: skew %v ppm", ErrDriftValue, d.Skew*1e6)
	}
	u := max(d.Skew, MinSkew) + DriftAging*max(0, age.Seconds())
	if u >= maxFreq {
		return 0, fmt.Errorf("%w: skew %.3f ppm after %v is no better than a cold start", ErrDriftValue, u*1e6, age.Round(time.Second))
	}
	return u, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// AppendText appends the drift file's contents: the header line, then frequency and skew
// in ppm with chrony's six decimals, and the Unix time of the estimate.
func (d Drift) AppendText(b []byte) ([]byte, error) {
	b = append(b, driftHeader...)
	b = append(b, '\n')
	b = strconv.AppendFloat(b, d.Freq*1e6, 'f', 6, 64)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, d.Skew*1e6, 'f', 6, 64)
	b = append(b, ' ')
	b = strconv.AppendInt(b, d.At.Unix(), 10)
	return append(b, '\n'), nil
}

// ParseDrift reads a drift file's contents. It checks the form only; whether the values
// may be used now is Uncertainty's question.
func ParseDrift(data []byte) (Drift, error) {
	if len(data) > MaxDriftFileSize {
		return Drift{}, fmt.Errorf("%w: %d bytes", ErrDriftFormat, len(data))
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) > 0 && isChronyDrift(lines[0]) {
		return Drift{}, ErrDriftChrony
	}
	if len(lines) != 2 || lines[0] != driftHeader {
		return Drift{}, fmt.Errorf("%w: want the header line and one line of values", ErrDriftFormat)
	}
	f := strings.Split(lines[1], " ")
	if len(f) != 3 {
		return Drift{}, fmt.Errorf("%w: want 3 values, got %d", ErrDriftFormat, len(f))
	}
	freq, err1 := strconv.ParseFloat(f[0], 64)
	skew, err2 := strconv.ParseFloat(f[1], 64)
	unix, err3 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Drift{}, fmt.Errorf("%w: %v", ErrDriftFormat, err)
	}
	if !finite(freq) || !finite(skew) || unix < 0 || unix > 1<<40 {
		return Drift{}, fmt.Errorf("%w: values out of range", ErrDriftFormat)
	}
	return Drift{Freq: freq / 1e6, Skew: skew / 1e6, At: time.Unix(unix, 0)}, nil
}

// isChronyDrift reports whether line is chronyd's drift line (frequency and skew) or
// ntpd's (frequency alone): one or two numbers.
func isChronyDrift(line string) bool {
	f := bytes.Fields([]byte(line))
	if len(f) < 1 || len(f) > 2 {
		return false
	}
	for _, w := range f {
		if _, err := strconv.ParseFloat(string(w), 64); err != nil {
			return false
		}
	}
	return true
}

// Restore starts the clock on a frequency a drift file kept, valid at system time sys
// (see Drift.Uncertainty). Until the fit has a slope of its own the clock runs on d.Freq
// and claims its aged uncertainty instead of MaxFreq, so the root dispersion after a
// restart is as small as the saved estimate deserves. It is refused once the clock has
// taken an estimate: the fit's own frequency is better.
func (c *SoftClock) Restore(sys time.Time, d Drift) error {
	if c.fit.n > 0 {
		return errors.New("upstream: drift restored after the first estimate")
	}
	if _, err := d.Uncertainty(sys, c.opts.MaxFreq); err != nil {
		return err
	}
	c.prior, c.hasPrior = d, true
	c.snap.corr.freq = d.Freq
	return nil
}

// Drift returns the frequency estimate to save, and false while there is none worth
// saving. A fitted slope is saved with its standard error; before the fit has one, a
// restored drift is handed back unchanged (its time too, so it keeps aging) and a cold
// start's guess is not saved at all.
func (c *SoftClock) Drift() (Drift, bool) {
	switch {
	case c.fitted:
		return Drift{Freq: c.snap.corr.freq, Skew: c.skew, At: c.snap.estAt}, true
	case c.hasPrior:
		return c.prior, true
	}
	return Drift{}, false
}

// SampleSkew is the frequency uncertainty the clock filters age their samples by
// (Filter.Skew): the fitted slope's standard error, or before the fit has one the restored
// drift's aged skew or MaxFreq.
func (c *SoftClock) SampleSkew(sys time.Time) float64 {
	if c.fitted {
		return c.skew
	}
	return c.startSkew(c.snap.Local(sys))
}

// startSkew is the frequency uncertainty while the fit has no slope: the restored
// drift's, aged to local time, or MaxFreq on a cold start.
func (c *SoftClock) startSkew(local time.Time) float64 {
	if !c.hasPrior {
		return c.opts.MaxFreq
	}
	u, err := c.prior.Uncertainty(local, c.opts.MaxFreq)
	if err != nil {
		return c.opts.MaxFreq
	}
	return u
}
