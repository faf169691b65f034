package upstream

import (
	"math"
	"time"
)

const (
	// fitPoints is how many fresh estimates the offset/frequency fit remembers. Sixteen
	// estimates average the noise of a single one down by about four, and at a 64 s poll
	// span a quarter of an hour, short enough to follow the temperature drift of a crystal.
	fitPoints = 16
	// minFreqSpan is the shortest span of estimates a frequency is fitted over. Over a few
	// iburst seconds, half a millisecond of noise would look like hundreds of ppm.
	minFreqSpan = 60 * time.Second
)

// fitPoint is one fresh estimate: offset o (seconds) at local time t.
type fitPoint struct {
	t time.Time
	o float64
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
	f.pts[f.next] = fitPoint{t: t, o: o}
	f.next = (f.next + 1) % fitPoints
	f.n = min(f.n+1, fitPoints)
}

// line returns the fitted offset at local time at and the slope, clamped to ±maxFreq, the
// mean time of the points, and whether the slope was fitted. With fewer than three points or
// a span under minFreqSpan the slope stays prev and only the offset is fitted. line needs at
// least one point.
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
	fitted = f.n >= 3 && hi-lo >= minFreqSpan.Seconds()
	if fitted {
		var sxx, sxy float64
		for i := range f.n {
			dx := xs[i] - mx
			sxx += dx * dx
			sxy += dx * (f.pts[i].o - my)
		}
		freq = sxy / sxx
	}
	freq = min(max(freq, -maxFreq), maxFreq)
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
