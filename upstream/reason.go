package upstream

import "strconv"

// ReasonKind says why the gateway is not (or no longer freshly) synchronised.
type ReasonKind uint8

// Reasons, in the words an operator reads in the log and in status output.
const (
	ReasonNone              ReasonKind = iota // synchronised
	ReasonStarting                            // not yet synchronised
	ReasonNoSources                           // no sources
	ReasonNoSelectable                        // no selectable sources (unsynchronised, stratum 16, no samples)
	ReasonBeyondMaxDistance                   // all sources beyond maxdistance
	ReasonNoMajority                          // no majority of the selectable sources agrees
	ReasonTooFew                              // fewer than minsources agree
	ReasonPanic                               // offset beyond the panic threshold, refused
	ReasonBeforeBuild                         // sources claim a time before the build date, refused
	ReasonHoldover                            // holdover limit exceeded
	ReasonNoRequired                          // no source with the require option agrees
	ReasonLoneStep                            // a lone source's start-up step beyond maxstartoffset, refused
)

// Reason is a ReasonKind with the numbers that explain it. It is a plain value so that the
// paths that record it format nothing; String builds the text when someone reads it.
type Reason struct {
	Kind ReasonKind
	// Agree and Of qualify ReasonTooFew ("only Agree of minsources Of agree") and
	// ReasonNoMajority (Of selectable sources).
	Agree, Of int
	// Cause is, for ReasonHoldover, why the sources were lost, when known.
	Cause ReasonKind
}

// String renders the reason, e.g. "only 2 of minsources 3 agree".
func (r Reason) String() string {
	s := r.Kind.text(r.Agree, r.Of)
	if r.Kind == ReasonHoldover && r.Cause != ReasonNone && r.Cause != ReasonHoldover {
		s += " (" + r.Cause.text(r.Agree, r.Of) + ")"
	}
	return s
}

func (k ReasonKind) text(agree, of int) string {
	switch k {
	case ReasonNone:
		return "synchronised"
	case ReasonStarting:
		return "not yet synchronised"
	case ReasonNoSources:
		return "no source has a usable sample"
	case ReasonNoSelectable:
		return "no selectable sources"
	case ReasonBeyondMaxDistance:
		return "all sources beyond maxdistance"
	case ReasonNoMajority:
		return "no majority of " + strconv.Itoa(of) + " sources agrees"
	case ReasonTooFew:
		return "only " + strconv.Itoa(agree) + " of minsources " + strconv.Itoa(of) + " agree"
	case ReasonPanic:
		return "offset beyond panic threshold refused"
	case ReasonBeforeBuild:
		return "time before build date refused"
	case ReasonHoldover:
		return "holdover limit exceeded"
	case ReasonNoRequired:
		return "no required source (server … require) among the agreeing sources"
	case ReasonLoneStep:
		return "start-up step of a lone source beyond maxstartoffset refused"
	}
	return "unknown reason " + strconv.Itoa(int(k))
}
