package upstream

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Errors returned by SoftClock.Update.
var (
	// ErrPanic: the estimate is further from the served time than the panic threshold. Such
	// an offset more likely means broken or hostile sources than a broken clock, so it is
	// refused and reported, never followed (ntpd's panic threshold).
	ErrPanic = errors.New("upstream: offset beyond panic threshold")
	// ErrBeforeBuild: the sources claim a time before the build date, which cannot be now.
	// It guards against replayed or forged old time.
	ErrBeforeBuild = errors.New("upstream: time before build date")
	// ErrLoneStep: before the first synchronisation, fewer than startQuorum sources put the
	// time further from the system clock than ClockOptions.StartLimit. A lone keyed upstream
	// 200 s off was followed at start-up (campaign finding); with the limit set, such a step
	// waits for a second source to agree.
	ErrLoneStep = errors.New("upstream: start-up offset of a lone source beyond maxstartoffset")
	// ErrDiscipline: the Discipliner failed. The served clock was updated regardless; only
	// the system clock did not follow.
	ErrDiscipline = errors.New("upstream: system clock discipline failed")
)

// startQuorum is how many combined sources may move the clock past StartLimit at start-up:
// two independent servers lying alike is a far stronger attack than one.
const startQuorum = 2

// Soft clock defaults.
const (
	// DefaultStepThreshold is ntpd's 128 ms: at start-up, a larger offset is stepped out
	// at once rather than slewed for minutes. After the first synchronisation (or the first
	// StepLimit estimates, chrony's makestep) the served clock is never stepped, since
	// downstream clients would see time jump.
	DefaultStepThreshold = 128 * time.Millisecond
	// DefaultPanicThreshold is ntpd's 1000 s (RFC 5905 Appendix A.5.5.6 PANICT).
	DefaultPanicThreshold = 1000 * time.Second
	// DefaultMaxSlew is 500 ppm, the rate Linux's adjtime slews at and ntpd's limit: fast
	// enough to remove 128 ms in about four minutes, slow enough that no client's own
	// discipline mistakes the slew for a broken server.
	DefaultMaxSlew = 500e-6
	// DefaultMaxFreq is ntpd's MAXFREQ (500 ppm): a larger frequency error is a broken
	// clock or bad data, not a crystal.
	DefaultMaxFreq = 500e-6
	// DefaultHoldoverLimit is how long the clock free-runs on its frequency estimate after
	// the last fresh estimate before it declares itself unsynchronised. In an hour PHI adds
	// 54 ms to the root dispersion, still a useful bound for clients, yet an operator has
	// time to notice the lost sources.
	DefaultHoldoverLimit = time.Hour
)

// Discipliner steers the system clock. By default timegate never touches it; a Discipliner
// (adjtimex on Linux, opt-in) makes the system clock follow the served clock for the other
// programs on the host.
//
// The SoftClock relies on the Discipliner doing exactly what it is told, because it maps
// system time back to local time with the same law (Snapshot.Local): a Discipliner that
// cannot should return an error rather than approximate.
type Discipliner interface {
	// Step jumps the system clock by offset (adjtimex ADJ_SETOFFSET). It is only called at
	// start-up, when the first estimate is more than the step threshold away.
	Step(offset time.Duration) error
	// Adjust replaces any slew still pending with a.
	Adjust(a Adjustment) error
}

// Adjustment is a slew order for the system clock, effective from the call: the clock runs
// at Freq (s/s) relative to its uncorrected rate, and on top gains Offset at Rate until all
// of Offset is in:
//
//	correction(t) = correction(call) + Freq·(t − call) + sign(Offset)·min(|Offset|, Rate·(t − call))
//
// With adjtimex: ADJ_FREQUENCY to Freq + sign(Offset)·Rate for |Offset|/Rate seconds, then
// to Freq (chrony's way of slewing), or, when Rate is 500 ppm, ADJ_OFFSET_SINGLESHOT, which
// slews at exactly that rate, plus ADJ_FREQUENCY to Freq.
type Adjustment struct {
	Offset time.Duration
	Rate   float64
	Freq   float64
}

// ClockOptions configure a SoftClock. The zero value gives the defaults.
type ClockOptions struct {
	StepThreshold time.Duration // ≤ 0: DefaultStepThreshold
	// StepLimit is how many of the first fresh estimates may step the clock (chrony's
	// makestep LIMIT); 0: 1, only the first, before anything was served as synchronised;
	// negative: none, the clock is only ever slewed.
	StepLimit      int
	PanicThreshold time.Duration // ≤ 0: DefaultPanicThreshold
	MaxSlew        float64       // ≤ 0: DefaultMaxSlew
	MaxFreq        float64       // ≤ 0: DefaultMaxFreq
	// HoldoverLimit: 0 means DefaultHoldoverLimit; negative means no
	// holdover at all: unsynchronised as soon as the sources are lost.
	HoldoverLimit time.Duration
	// StartLimit, when positive, is the largest offset from the system clock that the first
	// synchronisation accepts from fewer than startQuorum combined sources. Zero: no limit.
	StartLimit time.Duration
	// BuildDate: estimates that put the time before it are refused. Zero: no check.
	BuildDate time.Time
	// Discipliner, if not nil, makes the system clock follow the served clock.
	Discipliner Discipliner
}

func (o ClockOptions) withDefaults() ClockOptions {
	if o.StepThreshold <= 0 {
		o.StepThreshold = DefaultStepThreshold
	}
	if o.PanicThreshold <= 0 {
		o.PanicThreshold = DefaultPanicThreshold
	}
	if o.MaxSlew <= 0 {
		o.MaxSlew = DefaultMaxSlew
	}
	if o.MaxFreq <= 0 {
		o.MaxFreq = DefaultMaxFreq
	}
	if o.HoldoverLimit == 0 {
		o.HoldoverLimit = DefaultHoldoverLimit
	}
	if o.StepLimit == 0 {
		o.StepLimit = 1
	}
	return o
}

// SoftClock is the gateway's clock: an offset and frequency correction over the system
// clock, fitted to the combined estimates and applied smoothly, so that the gateway serves
// good time without touching the system clock.
//
// Each fresh estimate joins a least-squares line (offset against local time). Its value
// now is the target; the served clock slews towards it at no more than MaxSlew while
// running at the line's slope, so served time never jumps, only bends. The one exception is
// the first estimate, which is stepped to when it is more than StepThreshold away: the
// gateway has served nothing as synchronised yet (chrony's makestep widens this to the
// first StepLimit estimates).
//
// A frequency restored from a drift file (Restore) stands in for the slope until the
// line has one of its own.
//
// A SoftClock is owned by one goroutine; share its Snapshot.
type SoftClock struct {
	opts   ClockOptions
	snap   Snapshot
	fit    fit
	newest time.Time // newest sample epoch seen, to tell fresh estimates from repeats
	fresh  int       // fresh estimates taken, for StepLimit
	// fitted: the fit has a slope of its own, with standard error skew (s/s).
	fitted bool
	skew   float64
	// prior is the drift restored from a drift file (Restore), used until fitted.
	prior    Drift
	hasPrior bool
}

// NewSoftClock returns an unsynchronised clock that serves the system time.
func NewSoftClock(opts ClockOptions) *SoftClock {
	opts = opts.withDefaults()
	return &SoftClock{opts: opts, snap: Snapshot{limit: opts.HoldoverLimit}}
}

// Snapshot returns an immutable copy of the clock's current state.
func (c *SoftClock) Snapshot() *Snapshot {
	s := c.snap
	return &s
}

// Local maps a system clock reading to local time (see Snapshot.Local).
func (c *SoftClock) Local(sys time.Time) time.Time { return c.snap.Local(sys) }

// Now maps a system clock reading to served time.
func (c *SoftClock) Now(sys time.Time) time.Time { return c.snap.Now(sys) }

// Status returns the served state at system time sys.
func (c *SoftClock) Status(sys time.Time) Status { return c.snap.Status(sys) }

// Lose records that a mitigation round found no usable estimate, and why. The clock holds
// over: it keeps running on its last frequency estimate while the root dispersion grows by
// PHI per second, until the holdover limit makes it unsynchronised.
func (c *SoftClock) Lose(why Reason) {
	c.snap.reason = why
	c.snap.holdover = c.snap.synced
}

// Update feeds the clock a combined estimate at system time sys. An estimate whose Newest
// sample is not newer than one already seen changes nothing: like RFC 5905's clock_update,
// the clock never uses the same samples twice, so repeated rounds over a silent network
// neither teach the fit anything nor reset the holdover age. Estimates beyond the panic
// threshold or before the build date are refused: the clock holds over and the error says
// why.
func (c *SoftClock) Update(sys time.Time, est Estimate) error {
	sys = sys.Round(0)
	local := c.snap.Local(sys)
	cur := c.snap.corr.at(local)
	if why, err := c.refuse(local, cur, est); err != nil {
		c.Lose(why)
		return err
	}
	if c.fit.n > 0 && !est.Newest.After(c.newest) {
		return nil
	}
	c.newest = est.Newest
	c.fit.add(est.Time.Round(0), est.Offset.Seconds())
	target, freq, mean, fitted := c.fit.line(local, c.snap.corr.freq, c.opts.MaxFreq)
	c.snap.fitMean, c.snap.freqUnknown, c.fitted = mean, 0, fitted
	if fitted {
		c.skew = max(c.fit.slopeErr(freq), MinSkew)
		c.snap.skew = c.skew
	} else {
		c.snap.freqUnknown = c.startSkew(local)
		c.snap.skew = c.snap.freqUnknown
	}
	stepped := 0.0
	c.fresh++
	if c.fresh <= c.opts.StepLimit && math.Abs(target-cur) > c.opts.StepThreshold.Seconds() {
		stepped = target - cur
		c.snap.corr = segment{start: local, base: target, freq: freq}
	} else {
		c.snap.corr = segment{start: local, base: cur, freq: freq, slew: target - cur, rate: c.opts.MaxSlew}
	}
	err := c.discipline(sys, target, freq, stepped)
	c.snap.synced, c.snap.est, c.snap.estAt = true, est, local
	c.snap.refTime = local.Add(dur(c.snap.corr.at(local)))
	c.snap.holdover, c.snap.reason = false, Reason{}
	return err
}

// refuse applies the panic threshold, the start-up limit and the build date to an estimate.
func (c *SoftClock) refuse(local time.Time, cur float64, est Estimate) (Reason, error) {
	away := est.Offset.Seconds() - cur
	if math.Abs(away) > c.opts.PanicThreshold.Seconds() {
		return Reason{Kind: ReasonPanic}, fmt.Errorf("%w: sources are %v from served time", ErrPanic, dur(away))
	}
	if lim := c.opts.StartLimit.Seconds(); !c.snap.synced && lim > 0 && math.Abs(away) > lim && est.Survivors < startQuorum {
		return Reason{Kind: ReasonLoneStep}, fmt.Errorf("%w: %d source(s) put the time %v from the system clock", ErrLoneStep, est.Survivors, dur(away))
	}
	if claimed := local.Add(est.Offset); claimed.Before(c.opts.BuildDate) {
		return Reason{Kind: ReasonBeforeBuild}, fmt.Errorf("%w: sources say %v", ErrBeforeBuild, claimed.UTC())
	}
	return Reason{}, nil
}

// discipline makes the system clock follow the served clock: it orders the same step and
// the same slew towards target at the same frequency, and records the order in the kernel
// segment, through which Local maps system time back to local time. The slew is computed
// from where the system clock is, not from where the served clock is, so that small
// differences between the two laws never accumulate.
func (c *SoftClock) discipline(sys time.Time, target, freq, stepped float64) error {
	d := c.opts.Discipliner
	if d == nil {
		return nil
	}
	var errs []error
	if stepped != 0 {
		if err := d.Step(dur(stepped)); err != nil {
			errs = append(errs, err)
		} else {
			// The system clock now reads stepped later; keep local time continuous.
			k := c.snap.kern.at(sys) + stepped
			sys = sys.Add(dur(stepped))
			c.snap.kern = segment{start: sys, base: k, freq: c.snap.kern.freq}
		}
	}
	k := c.snap.kern.at(sys)
	a := Adjustment{Offset: dur(target - k), Rate: c.opts.MaxSlew, Freq: freq}
	if err := d.Adjust(a); err != nil {
		errs = append(errs, err)
	} else {
		c.snap.kern = segment{start: sys, base: k, freq: freq, slew: a.Offset.Seconds(), rate: a.Rate}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrDiscipline, errors.Join(errs...))
	}
	return nil
}
