package upstream

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Cluster prunes the truechimers (RFC 5905 §11.2.2, clock_cluster): sorted by merit
// (stratum first, then root distance), it repeatedly discards the survivor whose offset is
// furthest, in the RMS sense, from all the others, until no more than minclust remain or the
// largest such selection jitter is below the smallest source jitter (pruning further could
// not make the ensemble quieter than its best member). A prefer source is never pruned.
//
// It returns the survivors with the system peer first (see systemPeer) and the rest by
// merit, together with the final selection jitter.
func Cluster(now time.Time, cands []Candidate, truechimers []int, opts SelectOptions) ([]int, time.Duration) {
	opts = opts.withDefaults()
	surv := slices.Clone(truechimers)
	if len(surv) == 0 {
		return nil, 0
	}
	// Merit: stratum first (in units of maxdistance, so it dominates), then root distance.
	metric := make([]float64, len(cands))
	for _, i := range surv {
		c := &cands[i]
		metric[i] = opts.MaxDistance.Seconds()*float64(c.Stratum) + c.distance(now)
	}
	slices.SortStableFunc(surv, func(a, b int) int { return cmp.Compare(metric[a], metric[b]) })
	var selJitter float64
	for {
		worst, psiMax, psiMin := selectionJitter(cands, surv)
		selJitter = psiMax
		if psiMax < psiMin || len(surv) <= opts.MinCluster || worst < 0 {
			break
		}
		surv = slices.Delete(surv, worst, worst+1)
	}
	systemPeer(cands, surv, opts.SystemPeer)
	return surv, dur(selJitter)
}

// selectionJitter returns the position of the non-prefer survivor with the largest selection
// jitter ψ_s(i) = sqrt(Σ_j (θ_i − θ_j)² / (n − 1)) (−1 if all are preferred), that largest
// value, and the smallest source jitter. With offsets d taken from their mean, the sum is
// n·d_i² + Σ_j d_j², so a round costs O(n) rather than O(n²).
func selectionJitter(cands []Candidate, surv []int) (worst int, psiMax, psiMin float64) {
	worst, psiMax, psiMin = -1, 0, math.Inf(1)
	n := float64(len(surv))
	var mean, s2 float64
	for _, i := range surv {
		mean += cands[i].Stats.Offset.Seconds() / n
	}
	for _, i := range surv {
		d := cands[i].Stats.Offset.Seconds() - mean
		s2 += d * d
	}
	worstPsi := -1.0
	for pos, i := range surv {
		psiMin = min(psiMin, cands[i].Stats.Jitter.Seconds())
		if len(surv) < 2 {
			continue
		}
		d := cands[i].Stats.Offset.Seconds() - mean
		psi := math.Sqrt((n*d*d + s2) / (n - 1))
		psiMax = max(psiMax, psi)
		// >= so that of equally distant survivors the one of least merit goes first.
		if !cands[i].Prefer && psi >= worstPsi {
			worst, worstPsi = pos, psi
		}
	}
	return worst, psiMax, psiMin
}

// systemPeer moves the system peer to the front of surv (sorted by merit): a surviving
// prefer source; else the current system peer if it survives at the stratum of the best
// survivor, to avoid clock hopping (RFC 5905 Appendix A.5.5.1); else the best survivor.
func systemPeer(cands []Candidate, surv []int, current uint64) {
	pick := 0
	for pos, i := range surv {
		if cands[i].Prefer {
			pick = pos
			break
		}
		if current != 0 && cands[i].ID == current && cands[i].Stratum == cands[surv[0]].Stratum {
			pick = pos
		}
	}
	if pick > 0 {
		p := surv[pick]
		copy(surv[1:pick+1], surv[:pick])
		surv[0] = p
	}
}

// Estimate is the combined result of one round of selection, the input to SoftClock.Update.
type Estimate struct {
	// Time is the local time the Offset refers to: the mean epoch of the combined samples
	// with the same weights, so that a clock running fast or slow does not bias it.
	Time time.Time
	// Newest is the epoch of the newest sample among the survivors; an estimate is fresh
	// only if Newest advanced.
	Newest time.Time
	// Offset is the combined offset, true time minus local time (RFC 5905 §11.2.3).
	Offset time.Duration
	// Jitter is the system jitter sqrt(ψ_p² + ψ_s²): the system peer's jitter and the
	// weighted RMS spread of the survivors around it.
	Jitter time.Duration

	// Peer is the index of the system peer in the candidate slice.
	Peer int
	// PeerID, Stratum, RefID and Leap describe what the gateway serves: the system peer's
	// ID, stratum (the gateway serves Stratum + 1), and reference ID; Leap is the leap
	// warning more than half of the survivors announce.
	PeerID  uint64
	Stratum uint8
	RefID   uint32
	Leap    Leap
	// RootDelay and RootDispersion are the gateway's distance to the primary reference
	// through the system peer as of the combining (RFC 5905 Appendix A.5.5.4 clock_update).
	RootDelay      time.Duration
	RootDispersion time.Duration
	// Survivors is how many sources were combined.
	Survivors int
}

// Combine averages the survivors' offsets weighted by the inverse of their root distance
// (RFC 5905 §11.2.3, clock_combine), so the sources that can vouch for the tightest error
// bound count most. survivors[0] is the system peer, whose stratum, reference and root delay
// and dispersion the gateway inherits:
//
//	rootdelay = rootdelay_p + δ_p
//	rootdisp  = rootdisp_p + sqrt(ψ_p² + ψ_s²) + max(ε_p + PHI·(now − t_p), MINDISP)
//
// The RFC also adds |θ_p|, the residual offset of the disciplined clock; SoftClock adds
// its own equivalent, the correction it has not yet slewed in. Combine panics if survivors
// is empty.
func Combine(now time.Time, cands []Candidate, survivors []int) Estimate {
	p := &cands[survivors[0]]
	ref := p.Stats.Epoch
	var y, z, w, ts float64
	newest := ref
	for _, i := range survivors {
		c := &cands[i]
		x := max(c.distance(now), MinDisp.Seconds()/2)
		y += 1 / x
		z += c.Stats.Offset.Seconds() / x
		d := (c.Stats.Offset - p.Stats.Offset).Seconds()
		w += d * d / x
		ts += c.Stats.Epoch.Sub(ref).Seconds() / x
		if c.Stats.Epoch.After(newest) {
			newest = c.Stats.Epoch
		}
	}
	psiS, psiP := math.Sqrt(w/y), p.Stats.Jitter.Seconds()
	jitter := math.Hypot(psiP, psiS)
	age := max(0, now.Sub(p.Stats.Updated).Seconds())
	disp := max(p.Stats.Dispersion.Seconds()+PHI*age, MinDisp.Seconds())
	return Estimate{
		Time:           ref.Add(dur(ts / y)),
		Newest:         newest,
		Offset:         dur(z / y),
		Jitter:         dur(jitter),
		Peer:           survivors[0],
		PeerID:         p.ID,
		Stratum:        p.Stratum,
		RefID:          p.RefID,
		Leap:           leapVote(cands, survivors),
		RootDelay:      p.RootDelay + p.Stats.Delay,
		RootDispersion: p.RootDispersion + dur(jitter+disp),
		Survivors:      len(survivors),
	}
}

// leapVote returns the leap warning announced by more than half of the survivors. RFC 5905
// copies the system peer's; a vote (as chrony does) keeps one source from inserting a leap
// second on its own.
func leapVote(cands []Candidate, survivors []int) Leap {
	var ins, del int
	for _, i := range survivors {
		switch cands[i].Leap {
		case LeapInsert:
			ins++
		case LeapDelete:
			del++
		}
	}
	switch half := len(survivors) / 2; {
	case ins > half:
		return LeapInsert
	case del > half:
		return LeapDelete
	}
	return LeapNone
}

// Result is one complete mitigation round.
type Result struct {
	Selection
	// Survivors are the clustering survivors, system peer first.
	Survivors []int
	// Estimate is valid when OK() is true.
	Estimate Estimate
}

// Mitigate runs selection, clustering and combining over cands at local time now: the
// whole of RFC 5905 §11.2 as one pure function. When it is not OK, Reason says why and the
// caller hands that to SoftClock.Lose; otherwise Estimate goes to SoftClock.Update.
func Mitigate(now time.Time, cands []Candidate, opts SelectOptions) Result {
	res := Result{Selection: Select(now, cands, opts)}
	if !res.OK() {
		return res
	}
	res.Survivors, _ = Cluster(now, cands, res.Truechimers, opts)
	res.Estimate = Combine(now, cands, res.Survivors)
	return res
}
