package nts

import (
	"encoding/binary"
	"io"

	"timegate/ntp"
	"timegate/siv"
)

var _ ntp.NTSBatchHandler = (*Server)(nil)

// batchChunk is how many requests RespondBatch takes through its phases
// together. Every phase's chains (cookie opens; C2S checks beside new
// cookies) become lanes of siv.Batch, four at a time; eight requests keep
// the lanes full while the long chains of the C2S checks (14 blocks of
// associated data each) run beside the short ones of the cookies, and
// sixteen spread each phase's fixed work over more of them (3 % less per
// request than eight, BenchmarkRespondNTSBatch/n=16). Each reply is still
// stamped just before its own seal, in phase 3.
const batchChunk = 16

// batchScratch is the memory of one chunk, kept with a request scratch.
type batchScratch struct {
	b     siv.Batch
	reqs  [batchChunk]batchReq
	spare [batchChunk]cachedKeys // keys of a request whose cache slot is busy
	busy  uint64                 // key-cache slots the chunk's requests use
	spent uint32                 // spare entries holding keys
	// The requests whose C2S check is in b's pending operations.
	checks  [batchChunk]int
	nchecks int
}

// batchReq is one request of a chunk on its way through the phases.
type batchReq struct {
	job    *ntp.NTSJob
	q      ntsRequest
	o      opened
	reason ntp.Reason
	pt     [cookiePlainLen]byte // the request cookie's plaintext
	op     int                  // its operation in b's current Run
	alone  bool                 // answered by Respond instead

	// AEAD 15, the C2S check and the reply laid out for the S2C seal.
	verified          bool
	noRoom            bool // no cookie fits: ReasonNoRoom once verified
	reply, out, nonce []byte
	hdr, authStart    int
}

// RespondBatch answers every job as Respond answers its request (the same
// reply or NAK, or the same reason to drop), but the AES work of up to
// batchChunk requests at a time overlaps: their cookie opens run as lanes
// side by side, then their C2S checks beside the new cookies' seals (a
// request's C2S check and its new cookies do not depend on each other).
// What follows the transmit timestamp is the same per reply as in Respond:
// each reply is stamped and sealed on its own, last, so that its
// timestamp is read as late as before.
//
// A job whose Reply has less spare capacity than its Limit goes through
// Respond (the in-place layout must not move while its seals are pending).
func (s *Server) RespondBatch(jobs []ntp.NTSJob) {
	ring := s.ring()
	if ring == nil {
		for i := range jobs {
			jobs[i].Out, jobs[i].Reason = nil, ntp.ReasonNTSDisabled
		}
		return
	}
	sc := s.scratch()
	defer s.release(sc)
	if sc.batch == nil {
		// Apart from the scratch itself, so that a server that never
		// batches does not carry it (about 25 kB).
		sc.batch = new(batchScratch)
	}
	for len(jobs) > 0 {
		n := min(len(jobs), batchChunk)
		if n == 1 {
			// Alone, the lanes cost more than they hide (BENCHMARKS.md,
			// "NTS replies in batches"): Respond's path, which is the
			// same answer by definition.
			j := &jobs[0]
			j.Out, j.Reason = s.respondOne(sc, ring, j.Reply, j.Req, j.Fields, j.Limit, j.Tx)
		} else {
			s.respondChunk(sc, ring, jobs[:n])
		}
		jobs = jobs[n:]
	}
}

// respondChunk is RespondBatch for at most batchChunk jobs.
func (s *Server) respondChunk(sc *scratch, ring *KeyRing, jobs []ntp.NTSJob) {
	bs := sc.batch
	b := &bs.b
	rs := bs.reqs[:len(jobs)]
	defer bs.wipe(len(jobs))

	// Phase 1: each request's shape, then all cookie opens together.
	for i := range rs {
		j, r := &jobs[i], &rs[i]
		*r = batchReq{job: j, reason: ntp.ReasonOK}
		j.Out, j.Reason = nil, ntp.ReasonOK
		if cap(j.Reply) < j.Limit {
			r.alone = true // answered by Respond in phase 3
			continue
		}
		ok := checkRequest(&r.q, j.Req, &j.Fields)
		q := &r.q
		r.o.uid = q.uid
		if !ok {
			r.reason = ntp.ReasonBadNTS
			continue
		}
		k, nonce, ct, ok := ring.cookieKey(q.cookie)
		if !ok {
			r.reason = ntp.ReasonBadCookie
			continue
		}
		r.op = b.AddOpen(k.aead, r.pt[:len(ct)-siv.TagSize], nonce, ct, q.cookie[:cookieIDLen])
	}
	b.Run()
	for i := range rs {
		r := &rs[i]
		if r.reason != ntp.ReasonOK || r.alone {
			continue
		}
		var err error
		if !b.Opened(r.op) {
			r.reason = ntp.ReasonBadCookie
		} else if err = cookieFromPlain(&r.o.cookie, r.pt[:len(r.q.cookie)-cookieIDLen-cookieNonceLen-siv.TagSize]); err != nil {
			r.reason = ntp.ReasonBadCookie
		}
	}

	// Phase 2: keys, C2S checks and new cookies, all into b.
	bs.busy, bs.spent, bs.nchecks = 0, 0, 0
	for i := range rs {
		if r := &rs[i]; r.reason == ntp.ReasonOK && !r.alone && r.o.cookie.AEAD == AEADAESSIVCMAC256 {
			s.layOut(sc, ring, i)
		}
	}
	bs.run()

	// Phase 3: per request, in order, as Respond ends.
	for i := range rs {
		j, r := &jobs[i], &rs[i]
		j.Out, j.Reason = s.finishOne(sc, ring, j, r)
	}
}

// layOut is phase 2 for request i (AEAD 15): its expanded keys, its C2S
// check (into the batch, or here when the request encrypted fields, which
// needs the CTR key the cache does not expand), and its reply laid out as
// seal lays it out, with the new cookies' seals added to the batch.
// Whatever fails is decided in finishOne, in Respond's order: a failed
// check before a reply without room.
func (s *Server) layOut(sc *scratch, ring *KeyRing, i int) {
	bs := sc.batch
	r, j := &bs.reqs[i], bs.reqs[i].job
	keys, err := sc.keys.lookupBatch(&r.o.cookie, &bs.busy, &bs.spare[i])
	if err != nil {
		r.reason = ntp.ReasonBadNTS
		return
	}
	if keys == &bs.spare[i] {
		bs.spent |= 1 << i
	}
	r.o.keys = keys
	encrypted := 0
	if len(r.q.ciphertext) > siv.TagSize {
		var ok bool
		if encrypted, ok = verify(&sc.c2s, &keys.c2s, j.Req, &r.q); !ok {
			r.reason = ntp.ReasonBadNTS
			return
		}
		r.verified = true
	}
	if r.q.placeholders+encrypted > maxPlaceholders {
		r.reason = ntp.ReasonBadNTS
		return
	}
	r.o.cookies = 1 + r.q.placeholders + encrypted

	// As seal decides it: how many new cookies fit (none: no room).
	reply, n, room := j.Reply, 0, 0
	if len(reply) >= ntp.HeaderLen {
		r.hdr = len(reply) - ntp.HeaderLen
		reply = ntp.AppendExtField(reply, ntp.EFUniqueIdentifier, r.o.uid)
		room = j.Limit - len(reply)
		n = min(r.o.cookies, MaxCookies)
		for n > 0 && authFieldLen(n*cookieFieldLen) > room {
			n--
		}
	}
	if bs.b.Len()+1+n > siv.MaxBatch {
		bs.run()
	}
	if !r.verified {
		r.op = bs.b.AddOpen(&keys.c2s, nil, r.q.nonce, r.q.ciphertext, j.Req[:r.q.authStart])
		bs.checks[bs.nchecks] = i
		bs.nchecks++
	}
	if n == 0 {
		r.noRoom = true
		return
	}
	rnd := s.nonces(sc)
	reply, w, err := beginAuth(reply, rnd, authNonceLen)
	if err != nil {
		r.noRoom = true
		return
	}
	reply = w.reserveTag(reply)
	cur := ring.current()
	for range n {
		reply = appendFieldHeader(reply, ntp.EFCookie, CookieSize)
		var sealed, nonce, id []byte
		if reply, sealed, nonce, id, err = layCookie(reply, &r.o.cookie, cur, rnd); err != nil {
			r.noRoom = true
			return
		}
		bs.b.AddSeal(cur.aead, sealed, nonce, id)
	}
	r.reply, r.out, r.nonce = w.close(reply, room)
	r.authStart = w.start
}

// run runs the batch's pending operations and records the C2S checks.
func (bs *batchScratch) run() {
	bs.b.Run()
	for _, i := range bs.checks[:bs.nchecks] {
		r := &bs.reqs[i]
		r.verified = bs.b.Opened(r.op)
	}
	bs.nchecks = 0
}

// finishOne is phase 3 for one request: Respond's answer from what the
// phases found, and for a good request the S2C seal around its stamp.
func (s *Server) finishOne(sc *scratch, ring *KeyRing, j *ntp.NTSJob, r *batchReq) ([]byte, ntp.Reason) {
	if r.alone {
		// Not respondOne with sc: its key lookup could evict keys the
		// chunk's later requests still use. Respond takes a scratch of
		// its own.
		return s.Respond(j.Reply, j.Req, j.Fields, j.Limit, j.Tx)
	}
	switch r.reason {
	case ntp.ReasonOK:
	case ntp.ReasonBadCookie:
		return appendNAK(j.Reply[:max(0, len(j.Reply)-ntp.HeaderLen)], j.Req, r.o.uid), r.reason
	default:
		return nil, r.reason
	}
	switch r.o.cookie.AEAD {
	case AEADAESSIVCMAC256:
	case AEADAES128GCMSIV:
		encrypted, ok := verifyGCMSIV(&r.o.cookie, j.Req, &r.q)
		if !ok || r.q.placeholders+encrypted > maxPlaceholders {
			return nil, ntp.ReasonBadNTS
		}
		r.o.cookies = 1 + r.q.placeholders + encrypted
		out, ok := s.seal(sc, ring, &r.o, j.Reply, j.Limit, j.Tx)
		if !ok {
			return nil, ntp.ReasonNoRoom
		}
		return out, ntp.ReasonOK
	default:
		return nil, ntp.ReasonBadNTS
	}
	if !r.verified {
		return nil, ntp.ReasonBadNTS
	}
	if r.noRoom {
		return nil, ntp.ReasonNoRoom
	}
	s2c := &sc.s2c
	s2c.UseKey(&r.o.keys.s2c)
	s2c.PrepareSeal(r.out, r.nonce)
	j.Tx.Stamp(r.reply[r.hdr : r.hdr+ntp.HeaderLen])
	s2c.FinishSeal(r.out, r.reply[r.hdr:r.authStart])
	s2c.Reset()
	return r.reply, ntp.ReasonOK
}

// wipe clears what a chunk of n requests left in the scratch: cookie
// plaintexts and opened keys, and any spare expanded keys. The key cache
// keeps its entries, as Respond's does.
func (bs *batchScratch) wipe(n int) {
	clear(bs.reqs[:n])
	for i := range bs.spare {
		if bs.spent&(1<<i) != 0 {
			bs.spare[i] = cachedKeys{}
		}
	}
	bs.spent, bs.busy, bs.nchecks = 0, 0, 0
	if bs.b.Len() > 0 {
		// Only when a phase did not run what it added (a panic on the
		// way): Run itself leaves the batch empty and wiped, and a Reset
		// clears all of its 12 kB.
		bs.b.Reset()
	}
}

// cookieKey finds the ring key of a request cookie and splits the cookie
// into nonce and sealed part, as OpenCookie does before it opens it: false
// for a length no cookie has or a key the ring does not hold.
func (r *KeyRing) cookieKey(cookie []byte) (k *masterKey, nonce, ct []byte, ok bool) {
	if len(cookie) != CookieSize && len(cookie) != CookieSizeGCMSIV {
		return nil, nil, nil, false
	}
	if k = r.find(binary.BigEndian.Uint32(cookie)); k == nil {
		return nil, nil, nil, false
	}
	return k, cookie[cookieIDLen : cookieIDLen+cookieNonceLen], cookie[cookieIDLen+cookieNonceLen:], true
}

// layCookie appends a cookie holding c (AEAD 15) under k, laid out for
// siv.Batch.AddSeal rather than sealed: key id, fresh nonce, a V slot and
// the plaintext. The seal in place gives the bytes SealCookie writes.
// dst must have room for it: nothing here may reallocate dst, whose
// cookies are sealed later.
func layCookie(dst []byte, c *Cookie, k *masterKey, rand io.Reader) (_, sealed, nonce, id []byte, err error) {
	off := len(dst)
	if cap(dst)-off < CookieSize {
		return nil, nil, nil, nil, ErrCookieInvalid
	}
	out := dst[off : off+CookieSize]
	binary.BigEndian.PutUint32(out, k.id)
	nonce = out[cookieIDLen : cookieIDLen+cookieNonceLen]
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, nil, nil, nil, err
	}
	sealed = out[cookieIDLen+cookieNonceLen:]
	pt := sealed[siv.TagSize:]
	binary.BigEndian.PutUint16(pt, c.AEAD)
	pt[2], pt[3] = 0, 0
	copy(pt[4:], c.C2S[:KeyLen])
	copy(pt[4+KeyLen:], c.S2C[:KeyLen])
	return dst[:off+CookieSize], sealed, nonce, out[:cookieIDLen], nil
}
