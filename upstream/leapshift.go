package upstream

import "time"

// ShiftLeap moves the served clock by d at system time sys for a leap second
// (d = −1 s for an inserted second): UTC itself moved, so every offset the
// clock holds moves with it. The correction law, the fitted estimates and the
// last estimate all shift by d, so that the frequency estimate is untouched
// and samples taken after the leap agree with those before; the holdover age
// and the slew in progress carry on. With a Discipliner the system clock is
// stepped by d too, recorded in the kernel law so that local time, in which
// samples are measured, stays continuous.
//
// This is chrony's LCL_ApplyStepOffset at a leap, which also slews every
// stored sample (SST_SlewSamples); Source.ShiftSamples is that half.
func (c *SoftClock) ShiftLeap(sys time.Time, d time.Duration) error {
	sys = sys.Round(0)
	local := c.snap.Local(sys)
	s := d.Seconds()
	cur := c.snap.corr.at(local)
	c.snap.corr = segment{start: local, base: cur + s, freq: c.snap.corr.freq,
		slew: c.snap.corr.pending(local), rate: c.snap.corr.rate}
	for i := range c.fit.pts {
		c.fit.pts[i].o += s
	}
	c.snap.est.Offset += d
	c.snap.refTime = c.snap.refTime.Add(d)
	if c.opts.Discipliner == nil {
		return nil
	}
	if err := c.opts.Discipliner.Step(d); err != nil {
		return err
	}
	k := c.snap.kern.at(sys) + s
	sys = sys.Add(d)
	c.snap.kern = segment{start: sys, base: k, freq: c.snap.kern.freq}
	return nil
}

// ShiftSamples moves every stored sample's offset by d, for a leap second
// (see SoftClock.ShiftLeap): the source's own time moved by d against the
// local clock, and samples taken before must compare with those after.
func (s *Source) ShiftSamples(d time.Duration) {
	s.filter.shiftOffsets(d)
}

func (f *Filter) shiftOffsets(d time.Duration) {
	for i := range f.reg {
		if f.reg[i].valid {
			f.reg[i].offset += d.Seconds()
		}
	}
	if f.have {
		f.stats.Offset += d
	}
	f.hdr.Offset += d
}
