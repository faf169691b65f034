package upstream

import (
	"math"
	"time"
)

const (
	// fitPoints is how many points the offset/frequency fit remembers. Sixteen points
	// average the noise of a single one down by about four, and at a 64 s poll span a
	// quarter of an hour, short enough to follow the temperature drift of a crystal.
	fitPoints = 16
	// fitMinGap is the least time between two points of the fit: estimates closer than
	// that are averaged into one point. At sub-second polls sixteen separate estimates
	// would span a fraction of a second, over which no frequency can be measured; merged,
	// they span at least sixteen seconds and each point is quieter.
	fitMinGap = time.Second
	// minFreqSpan is the span of points over which a slope is always fitted. Over a few
	// iburst seconds, half a millisecond of noise would look like hundreds of ppm; a
	// shorter span is used only when the slope's standard error says it is good enough
	// (maxEarlySkew).
	minFreqSpan = 60 * time.Second
	// maxEarlySkew is the standard error under which a slope fitted over less than
	// minFreqSpan is believed. On a quiet path (microseconds of noise) the iburst points
	// measure the frequency to far better than this within seconds; until a frequency is
	// fitted the clock runs on its prior one and its error grows by the difference times
	// the time since the estimates (issue 14: milliseconds within minutes at 30 ppm).
	maxEarlySkew = 1e-6
	// minFitPoints is how many points a slope needs: with fewer, noise has too few
	// degrees of freedom for its standard error to mean anything.
	minFitPoints = 4
)

// fitPoint is the mean of n fresh estimates: offset o (seconds) at local time t.
type fitPoint struct {
	t time.Time
	o float64
	n int
}

// fit is a least-squares line through the last fitPoints estimates, chrony-style: the
// offset it predicts for now is the target the served clock slews to, and its slope is the
// frequency the clock runs at between estimates. A straight line is what a free-running
// crystal with a constant frequency error produces, so the fit removes measurement noise
// without lagging behind a constant drift as a plain average would.
type fit struct {
	pts  [fitPoints]fitPoint
	n    int
	next int
}

func (f *fit) add(t time.Time, o float64) {
	if f.n > 0 {
		last := &f.pts[(f.next+fitPoints-1)%fitPoints]
		if t.Sub(last.t).Abs() < fitMinGap {
			k := float64(last.n)
			last.t = last.t.Add(dur(t.Sub(last.t).Seconds() / (k + 1)))
			last.o += (o - last.o) / (k + 1)
			last.n++
			return
		}
	}
	f.pts[f.next] = fitPoint{t: t, o: o, n: 1}
	f.next = (f.next + 1) % fitPoints
	f.n = min(f.n+1, fitPoints)
}

// line returns the fitted offset at local time at and the slope, clamped to ±maxFreq, the
// mean time of the points, and whether the slope was fitted. With fewer than minFitPoints
// points, or a span under minFreqSpan over which the slope's standard error is above
// maxEarlySkew, the slope stays prev and the offset is the newest point's, extrapolated
// with prev. line needs at least one point.
func (f *fit) line(at time.Time, prev, maxFreq float64) (off, freq float64, mean time.Time, fitted bool) {
	var xs [fitPoints]float64
	var sx, sy, lo, hi float64
	for i := range f.n {
		x := f.pts[i].t.Sub(at).Seconds()
		xs[i] = x
		sx += x
		sy += f.pts[i].o
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	n := float64(f.n)
	mx, my := sx/n, sy/n
	freq = prev
	if f.n >= minFitPoints && hi > lo {
		var sxx, sxy float64
		for i := range f.n {
			dx := xs[i] - mx
			sxx += dx * dx
			sxy += dx * (f.pts[i].o - my)
		}
		slope := sxy / sxx
		if hi-lo >= minFreqSpan.Seconds() || f.slopeErr(slope) <= maxEarlySkew {
			freq, fitted = slope, true
		}
	}
	freq = min(max(freq, -maxFreq), maxFreq)
	if !fitted {
		// Without a slope of its own the mean of the points lags a drifting clock by the
		// frequency error times half their span: follow the newest point instead, which
		// lags only by its own age.
		p := &f.pts[(f.next+fitPoints-1)%fitPoints]
		x := p.t.Sub(at).Seconds()
		return p.o - freq*x, freq, p.t, false
	}
	return my - freq*mx, freq, at.Add(dur(mx)), fitted
}

// slopeErr is the standard error of slope freq through the points: the residuals' spread
// over the spread of their times. It needs at least three points; the caller only asks
// once line has fitted a slope.
func (f *fit) slopeErr(freq float64) float64 {
	if f.n < 3 {
		return math.Inf(1)
	}
	ref := f.pts[0].t
	var sx, sy float64
	for i := range f.n {
		sx += f.pts[i].t.Sub(ref).Seconds()
		sy += f.pts[i].o
	}
	n := float64(f.n)
	mx, my := sx/n, sy/n
	var sxx, sres float64
	for i := range f.n {
		dx := f.pts[i].t.Sub(ref).Seconds() - mx
		r := f.pts[i].o - my - freq*dx
		sxx += dx * dx
		sres += r * r
	}
	if sxx == 0 {
		return math.Inf(1)
	}
	return math.Sqrt(sres / (n - 2) / sxx)
}
