package ntp

// Action is what the edge does with a request.
type Action uint8

// Actions.
const (
	ActionDrop   Action = iota // send nothing
	ActionReply                // send the reply
	ActionKoD                  // send the reply, which is a Kiss-o'-Death
	ActionNTSNAK               // send the reply, an unauthenticated NTS NAK (RFC 8915 §5.7)
)

// Reason says why a verdict was reached; the edge turns reasons into counters.
type Reason uint8

// Reasons. The order is stable: counters are indexed by it.
const (
	ReasonOK          Reason = iota
	ReasonShort              // shorter than a header
	ReasonFraming            // bad extension fields or trailer, or too long
	ReasonVersion            // version 0 or above 4
	ReasonMode               // not a client request
	ReasonSourcePort         // source port 0
	ReasonPolicy             // access policy said no
	ReasonRateLimited        // over the per-source limit
	ReasonRequireAuth        // policy requires authentication and the request has none
	ReasonUnknownKey         // MAC with a key ID we do not have
	ReasonBadMAC             // MAC did not verify
	ReasonNTSDisabled        // NTS fields but no NTS service configured
	ReasonBadCookie          // NTS cookie did not open (answered with NTS NAK)
	ReasonBadNTS             // NTS fields malformed or authenticator wrong
	ReasonNoRoom             // the reply would be larger than the request
	ReasonSourceAddr         // broadcast, multicast or unspecified source address
	NumReasons
)

var reasonNames = [NumReasons]string{
	"ok", "short", "framing", "version", "mode", "source-port", "policy",
	"rate-limited", "require-auth", "unknown-key", "bad-mac", "nts-disabled",
	"bad-cookie", "bad-nts", "no-room", "source-addr",
}

// String returns a short stable name for logs and metrics labels.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// AuthKind says how a request is authenticated.
type AuthKind uint8

// Authentication kinds.
const (
	AuthNone AuthKind = iota
	AuthKey           // RFC 8573 / legacy symmetric key MAC
	AuthNTS           // RFC 8915
)

// Verdict is the outcome of Respond.
type Verdict struct {
	Action Action
	Reason Reason
	Auth   AuthKind
	Kiss   KissCode // set for ActionKoD and ActionNTSNAK
	// Leak is set when the source was over its rate limit but was answered
	// anyway, so a spoofer cannot silence the address it spoofs.
	Leak bool
	// TxStamp asks the edge for the kernel's transmit timestamp of this
	// reply, to hand to Responder.KernelTransmit: the request may be
	// followed by an interleaved one (RFC 9769).
	TxStamp bool
	// Interleaved: the reply is in interleaved mode, its transmit
	// timestamp that of the previous reply to the client.
	Interleaved bool
}

// Restampable says the reply's transmit timestamp is covered by nothing —
// a basic-mode reply without MAC or NTS authenticator, not a kiss, and no
// kernel transmit stamp will be taken of it for an interleaved follow-up —
// so the edge may write it again just before the send (Responder.Restamp):
// what the edge does between Respond and the send system call then no
// longer counts as path delay on the way back to the client.
func (v Verdict) Restampable() bool {
	return v.Action == ActionReply && v.Auth == AuthNone && !v.TxStamp && !v.Interleaved
}
