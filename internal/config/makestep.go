package config

import (
	"strconv"
	"time"
)

// MakeStep is chrony's `makestep THRESHOLD LIMIT`: the clock may be stepped
// when the correction exceeds Threshold, during the first Limit updates.
// timegate applies it to the served clock and, with clockcontrol on, to the
// system clock alike; the zero value keeps timegate's rule (step by more
// than 128 ms at the first update only).
type MakeStep struct {
	Threshold time.Duration
	// Limit is how many of the first updates may step; -1: none (chrony's
	// limit 0, only ever slew).
	Limit int
}

// maxStepThreshold is the panic threshold (1000 s): a larger correction is
// refused, never stepped to, so a larger threshold would say nothing.
const maxStepThreshold = 1000 * time.Second

// makestep THRESHOLD LIMIT — chrony. A negative LIMIT (chrony: step at any
// update) is not followed: a gateway that stepped its served time after
// clients synchronised to it would make them all see time jump; timegate
// then steps at the first update only, and says so.
func makeStep(p *parser, name string, args []string) {
	if !p.exactly(name, args, 2) {
		return
	}
	sec, err := strconv.ParseFloat(args[0], 64)
	if err != nil || !(sec > 0) || sec > maxStepThreshold.Seconds() {
		p.fail(name, "threshold must be seconds in (0, %v], got %q", maxStepThreshold.Seconds(), args[0])
		return
	}
	limit, err := strconv.Atoi(args[1])
	if err != nil {
		p.fail(name, "limit must be an integer, got %q", args[1])
		return
	}
	m := MakeStep{Threshold: time.Duration(sec * float64(time.Second)), Limit: limit}
	switch {
	case limit == 0:
		m.Limit = -1
	case limit < 0:
		m.Limit = 1
		p.warn(name, "limit %d (step at any update) is not followed: served time is stepped only at the first update, "+
			"since clients already synchronised to the gateway would see it jump; later corrections are slewed", limit)
	}
	p.cfg.MakeStep = m
}
