package upstream

// A server that is not synchronised serves stratum 16, where RFC 5905 §7.3
// lets the reference ID carry four ASCII characters, as ntpd's ".INIT." and
// ".DNS." show. timegate puts the reason there, so that any client —
// `gatectl query`, `chronyc ntpdata`, `ntpq` — can see why without access to
// the server's log or control socket.
const (
	refIDInit   = 'I'<<24 | 'N'<<16 | 'I'<<8 | 'T' // starting, no estimate yet
	refIDNoSrc  = 'N'<<24 | 'S'<<16 | 'R'<<8 | 'C' // no (selectable) sources
	refIDDist   = 'D'<<24 | 'I'<<16 | 'S'<<8 | 'T' // all beyond maxdistance
	refIDMajor  = 'M'<<24 | 'A'<<16 | 'J'<<8 | 'R' // no majority agrees
	refIDMinSrc = 'M'<<24 | 'I'<<16 | 'N'<<8 | 'S' // fewer than minsources agree
	refIDPanic  = 'P'<<24 | 'A'<<16 | 'N'<<8 | 'C' // offset beyond the panic threshold
	refIDBuild  = 'B'<<24 | 'L'<<16 | 'D'<<8 | 'T' // time before the build date
	refIDHold   = 'H'<<24 | 'O'<<16 | 'L'<<8 | 'D' // holdover limit exceeded
	refIDReqd   = 'R'<<24 | 'E'<<16 | 'Q'<<8 | 'D' // no required source agrees
	refIDLone   = 'L'<<24 | 'O'<<16 | 'N'<<8 | 'E' // lone source's start-up step refused
)

// RefID returns the stratum-16 reference ID that names k.
func (k ReasonKind) RefID() uint32 {
	switch k {
	case ReasonNoSources, ReasonNoSelectable:
		return refIDNoSrc
	case ReasonBeyondMaxDistance:
		return refIDDist
	case ReasonNoMajority:
		return refIDMajor
	case ReasonTooFew:
		return refIDMinSrc
	case ReasonPanic:
		return refIDPanic
	case ReasonBeforeBuild:
		return refIDBuild
	case ReasonHoldover:
		return refIDHold
	case ReasonNoRequired:
		return refIDReqd
	case ReasonLoneStep:
		return refIDLone
	}
	return refIDInit
}

// ExplainRefID turns a stratum-16 reference ID served by timegate back into
// an operator's sentence; ok is false for codes timegate does not send.
func ExplainRefID(id uint32) (string, bool) {
	switch id {
	case refIDInit:
		return "not yet synchronised (starting, or no upstream configured)", true
	case refIDNoSrc:
		return "no selectable upstream source (none configured, unreachable, unauthenticated, or not answering)", true
	case refIDDist:
		return "all upstream sources are beyond maxdistance", true
	case refIDMajor:
		return "no majority of the upstream sources agrees", true
	case refIDMinSrc:
		return "fewer than minsources upstream sources agree", true
	case refIDPanic:
		return "upstream offset beyond the panic threshold was refused", true
	case refIDBuild:
		return "upstream time before the build date was refused", true
	case refIDHold:
		return "upstream sources lost for longer than the holdover limit", true
	case refIDReqd:
		return "no upstream source marked `require` is among the agreeing sources", true
	case refIDLone:
		return "a lone upstream's start-up offset beyond maxstartoffset was refused (waiting for a second source)", true
	}
	return "", false
}
