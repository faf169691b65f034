package gateway

import (
	"net/netip"
	"time"

	"timegate/ntp"
	"timegate/policy"
	"timegate/ratelimit"
)

// gate joins the access policy and the rate table into the responder's
// admission decision, in the order policy's package documentation gives:
// policy first (cheap, and a refusal must not spend rate budget on a
// request that is dropped anyway), then the per-source table for sources
// the policy marks limited.
type gate struct {
	policy *policy.Policy
	table  *ratelimit.Table // nil: rate limiting off
	// rateKoD is `ratelimit ... kod`: every limited source over its limit
	// gets RATE kisses, whatever its restrict rule says (README). Without
	// it, only sources whose rule has `kod` do.
	rateKoD bool
}

func (g *gate) Admit(client netip.Addr, now time.Time, auth ntp.AuthKind) ntp.Admission {
	d := g.policy.Decide(client, auth != ntp.AuthNone)
	adm := g.admit(d, client, now)
	adm.NoPeer = d.NoPeer
	return adm
}

func (g *gate) admit(d policy.Decision, client netip.Addr, now time.Time) ntp.Admission {
	if d.Action == policy.Drop {
		reason := ntp.ReasonPolicy
		if d.Cause == policy.FlagRequireAuth {
			reason = ntp.ReasonRequireAuth
		}
		return ntp.Admission{Action: ntp.ActionDrop, Reason: reason}
	}
	leak := false
	if d.Limited && g.table != nil {
		switch g.table.Allow(client, now) {
		case ratelimit.Drop:
			return ntp.Admission{Action: ntp.ActionDrop, Reason: ntp.ReasonRateLimited}
		case ratelimit.KoD:
			if d.Action == policy.Serve {
				if !d.KoD && !g.rateKoD {
					return ntp.Admission{Action: ntp.ActionDrop, Reason: ntp.ReasonRateLimited}
				}
				return ntp.Admission{Action: ntp.ActionKoD, Kiss: ntp.KissRATE, Reason: ntp.ReasonRateLimited}
			}
		case ratelimit.Leak:
			leak = true
		}
	}
	switch d.Action {
	case policy.KissDeny:
		return ntp.Admission{Action: ntp.ActionKoD, Kiss: ntp.KissDENY, Reason: ntp.ReasonPolicy, Leak: leak}
	case policy.KissRestrict:
		return ntp.Admission{Action: ntp.ActionKoD, Kiss: ntp.KissRSTR, Reason: ntp.ReasonRequireAuth, Leak: leak}
	}
	return ntp.Admission{Action: ntp.ActionReply, Leak: leak}
}
