package engine

import (
	"net"
	"net/netip"

	"timegate/upstream"
)

// Orphan mode (chrony's `local … orphan`): sources whose stratum is the
// local stratum or more are taken to serve a local clock, not real time, and
// never join the normal selection. When no other source is selectable, the
// orphan at exactly the local stratum with the smallest reference ID (its
// address) is followed, but only if that ID is smaller than our own address
// towards it; otherwise this gateway is the orphan the others follow, and
// serves its local clock. A group of gateways polling each other with the
// same `local stratum N orphan` line thus settles on one of them.

// orphanSplit removes the orphan sources from the round's candidates (the
// three slices are parallel) and returns the one to follow when no other
// source is selectable, or -1.
func (r *runner) orphanSplit(cands []upstream.Candidate, authed []bool, as []*assoc) ([]upstream.Candidate, []bool, []*assoc, int) {
	n := r.opts.OrphanStratum
	if n == 0 {
		return cands, authed, as, -1
	}
	var kc []upstream.Candidate
	var ka []bool
	var kas []*assoc
	best := -1
	for i, c := range cands {
		if c.Stratum < n {
			kc, ka, kas = append(kc, c), append(ka, authed[i]), append(kas, as[i])
			continue
		}
		if c.Stratum == n && (best < 0 || c.RefID < cands[best].RefID) {
			best = i
		}
	}
	if len(kc) > 0 || best < 0 || cands[best].RefID >= r.localRefID(as[best].addr.Addr()) {
		return kc, ka, kas, -1
	}
	return []upstream.Candidate{cands[best]}, []bool{authed[best]}, []*assoc{as[best]}, best
}

// localRefID is our reference ID as a source sees us: RefIDForAddr of the
// local address the kernel picks to reach it (chrony's NSR_GetLocalRefid).
// Connecting a UDP socket sends nothing. 0 when there is no route: then no
// orphan is followed, and this gateway serves its local clock.
func (r *runner) localRefID(remote netip.Addr) uint32 {
	if r.opts.LocalRefID != nil {
		return r.opts.LocalRefID(remote)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(remote, 123)))
	if err != nil {
		return 0
	}
	defer c.Close()
	return upstream.RefIDForAddr(c.LocalAddr().(*net.UDPAddr).AddrPort().Addr())
}
