package nts

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"timegate/ntp"
)

// sameBytes is a rand source that gives the same bytes on every read, so
// that the one-at-a-time and batch paths, which draw nonces in different
// orders (the batch lays out a reply before its C2S check is known), write
// the same replies.
type sameBytes struct{}

func (sameBytes) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(0x3c + i)
	}
	return len(p), nil
}

// batchRequest is one request of the mixed batch and what it should earn.
type batchRequest struct {
	name string
	req  []byte
	cap  int // of the reply buffer; 0 means ntp.MaxPacketLen
	want ntp.Action
}

// mixedRequests builds requests of every kind the server tells apart:
// good ones from several clients (1 to 8 cookies asked for; two clients
// whose keys share a key-cache slot; one client twice), one with an
// encrypted placeholder, AEAD 30 ones, a cookie of a dropped key and a
// tampered cookie (NAK), a tampered AD and a tampered tag (drop), malformed
// shapes (drop), and a reply buffer too small to lay out in place.
func mixedRequests(t *testing.T, f *ntsFixture) []batchRequest {
	t.Helper()
	var rs []batchRequest
	add := func(name string, req []byte, want ntp.Action) {
		rs = append(rs, batchRequest{name: name, req: req, want: want})
	}
	base := f.keys
	for i, held := range []int{8, 1, 4, 7} {
		f.keys = testCookie(byte(40 + 3*i))
		_, req := f.request(t, held)
		add("good", req, ntp.ActionReply)
	}
	// Slot = the low 5 bits of C2S[0]: 0x40 and 0x60 share one.
	for _, c0 := range []byte{0x40, 0x60, 0x40} {
		f.keys = testCookie(9)
		f.keys.C2S[0] = c0
		_, req := f.request(t, 8)
		add("same slot", req, ntp.ActionReply)
	}
	f.keys = base
	add("encrypted placeholder", f.raw(rawRequest{fields: f.standardFields(t, 0),
		plaintext: field(ntp.EFCookiePlaceholder, make([]byte, CookieSize))}), ntp.ActionReply)
	for _, held := range []int{8, 2} {
		add("AEAD 30", gcmRequest(t, f, held), ntp.ActionReply)
	}

	other := testRing(t, 99)
	cookie, err := other.SealCookie(nil, f.keys, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	add("unknown cookie key", f.raw(rawRequest{fields: [][]byte{
		field(ntp.EFUniqueIdentifier, testUID()), field(ntp.EFCookie, cookie)}}), ntp.ActionNTSNAK)
	_, req := f.request(t, 8)
	bad := bytes.Clone(req)
	bad[ntp.HeaderLen+36+4+30] ^= 1 // inside the cookie's ciphertext
	add("tampered cookie", bad, ntp.ActionNTSNAK)
	bad = bytes.Clone(req)
	bad[ntp.HeaderLen+8] ^= 1 // inside the UID: associated data
	add("tampered AD", bad, ntp.ActionDrop)
	bad = bytes.Clone(req)
	bad[len(bad)-20] ^= 1 // inside the tag
	add("tampered tag", bad, ntp.ActionDrop)
	add("no authenticator", f.raw(rawRequest{fields: f.standardFields(t, 0), noAuth: true}), ntp.ActionDrop)
	add("short UID", f.raw(rawRequest{fields: [][]byte{
		field(ntp.EFUniqueIdentifier, make([]byte, 16)), f.standardFields(t, 0)[1]}}), ntp.ActionDrop)
	add("short cookie", f.raw(rawRequest{fields: [][]byte{
		field(ntp.EFUniqueIdentifier, testUID()), field(ntp.EFCookie, make([]byte, 40))}}), ntp.ActionNTSNAK)
	add("bad padding", f.raw(rawRequest{fields: f.standardFields(t, 0), nonceLen: 12}), ntp.ActionDrop)
	_, req = f.request(t, 3)
	rs = append(rs, batchRequest{name: "small reply buffer", req: req, cap: len(req) - 1, want: ntp.ActionReply})
	return rs
}

// gcmRequest is an AEAD 30 request from a client holding held cookies
// sealed by f's ring.
func gcmRequest(t *testing.T, f *ntsFixture, held int) []byte {
	t.Helper()
	c := Cookie{AEAD: AEADAES128GCMSIV}
	for i := range 16 {
		c.C2S[i], c.S2C[i] = byte(0x70+i), byte(0x90-i)
	}
	res := &KEResult{AEAD: AEADAES128GCMSIV, C2S: c.C2S[:16], S2C: c.S2C[:16]}
	for range held {
		ck, err := f.ring.SealCookie(nil, c, seeded(17))
		if err != nil {
			t.Fatal(err)
		}
		res.Cookies = append(res.Cookies, ck)
	}
	s, err := NewClientSession(res)
	if err != nil {
		t.Fatal(err)
	}
	req, err := s.BuildRequest(nil, ntsNonce, testUID(), seeded(18))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestRespondBatchMatchesRespond: batches of every size up to past two
// chunks, drawn from the mixed requests in random order with repeats, get
// through RespondOrDefer, RespondNTS and NTSResult exactly the reply and
// verdict Respond gives each request alone, and what each kind should get.
func TestRespondBatchMatchesRespond(t *testing.T) {
	f := newNTSFixture(t)
	f.resp.NTS.(*Server).Rand = sameBytes{}
	rs := mixedRequests(t, f)
	want := make([][]byte, len(rs))
	wantV := make([]ntp.Verdict, len(rs))
	for i, r := range rs {
		want[i], wantV[i] = f.resp.Respond(make([]byte, 0, r.capacity()), r.req, ntsClient, ntsRx)
		if wantV[i].Action != r.want {
			t.Fatalf("%s: Respond's verdict %+v, want action %v", r.name, wantV[i], r.want)
		}
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for n := 1; n <= 2*batchChunk+3; n++ {
		for range 6 {
			pick := make([]int, n)
			for k := range pick {
				pick[k] = rng.IntN(len(rs))
			}
			checkBatch(t, f, rs, pick, want, wantV)
		}
	}
	// All of them, in order: every kind beside every other at least once.
	all := make([]int, len(rs))
	for i := range all {
		all[i] = i
	}
	checkBatch(t, f, rs, all, want, wantV)
}

func (r batchRequest) capacity() int {
	if r.cap != 0 {
		return r.cap
	}
	return ntp.MaxPacketLen
}

// checkBatch answers rs[pick[0]], rs[pick[1]], ... as one batch through
// the responder and compares each answer with want.
func checkBatch(t *testing.T, f *ntsFixture, rs []batchRequest, pick []int, want [][]byte, wantV []ntp.Verdict) {
	t.Helper()
	jobs := make([]ntp.NTSJob, 0, len(pick))
	type slot struct {
		reply []byte
		v     ntp.Verdict
		job   int // -1: answered at once
	}
	got := make([]slot, len(pick))
	for k, i := range pick {
		var job ntp.NTSJob
		reply, v, deferred := f.resp.RespondOrDefer(make([]byte, 0, rs[i].capacity()), rs[i].req, ntsClient, ntsRx, 0, &job)
		got[k] = slot{reply, v, -1}
		if deferred {
			got[k].job = len(jobs)
			jobs = append(jobs, job)
		}
	}
	f.resp.RespondNTS(jobs)
	for k, i := range pick {
		if got[k].job >= 0 {
			got[k].reply, got[k].v = f.resp.NTSResult(&jobs[got[k].job])
		} else if rs[i].want != ntp.ActionDrop {
			t.Fatalf("%s was not deferred", rs[i].name)
		}
		if !bytes.Equal(got[k].reply, want[i]) || got[k].v != wantV[i] {
			t.Fatalf("batch of %d, request %d (%s): reply %x, verdict %+v; alone %x, %+v",
				len(pick), k, rs[i].name, got[k].reply, got[k].v, want[i], wantV[i])
		}
	}
}

// TestRespondBatchWipes: after a batch, the scratch keeps no cookie
// plaintext, opened keys or spare expanded keys (the key cache keeps its
// entries, as after Respond).
func TestRespondBatchWipes(t *testing.T) {
	f := newNTSFixture(t)
	rs := mixedRequests(t, f)
	s := f.resp.NTS.(*Server)
	sc := s.scratch()
	sc.batch = new(batchScratch)
	var jobs []ntp.NTSJob
	for _, r := range rs {
		var job ntp.NTSJob
		if _, _, ok := f.resp.RespondOrDefer(make([]byte, 0, r.capacity()), r.req, ntsClient, ntsRx, 0, &job); ok {
			jobs = append(jobs, job)
		}
	}
	for len(jobs) > 0 {
		n := min(len(jobs), batchChunk)
		s.respondChunk(sc, f.ring, jobs[:n])
		jobs = jobs[n:]
		bs := sc.batch
		for i := range bs.reqs {
			if r := &bs.reqs[i]; r.job != nil || r.o.cookie != (Cookie{}) || r.pt != [cookiePlainLen]byte{} || r.o.keys != nil || r.reply != nil {
				t.Fatalf("request %d of the chunk left in the scratch", i)
			}
		}
		for i := range bs.spare {
			if bs.spare[i].used || bs.spare[i].raw != [2 * KeyLen]byte{} {
				t.Fatalf("spare keys %d left in the scratch", i)
			}
		}
		if bs.b.Len() != 0 {
			t.Fatal("operations left in the batch")
		}
	}
}

// TestRespondBatchShortReplyBuffer: a job whose Reply cannot grow to its
// Limit in place (a caller other than ntp.Responder) is answered as
// Respond answers it, beside requests that take the lanes, and does not
// disturb them.
func TestRespondBatchShortReplyBuffer(t *testing.T) {
	f := newNTSFixture(t)
	s := f.resp.NTS.(*Server)
	s.Rand = sameBytes{}
	var reqs [][]byte
	for i := range 4 {
		f.keys = testCookie(byte(60 + i))
		_, req := f.request(t, 8-i)
		reqs = append(reqs, req)
	}
	jobs := make([]ntp.NTSJob, len(reqs))
	want := make([][]byte, len(reqs))
	for i, req := range reqs {
		if _, _, ok := f.resp.RespondOrDefer(make([]byte, 0, ntp.MaxPacketLen), req, ntsClient, ntsRx, 0, &jobs[i]); !ok {
			t.Fatal("not deferred")
		}
		want[i], _ = s.Respond(bytes.Clone(jobs[i].Reply), req, jobs[i].Fields, jobs[i].Limit, jobs[i].Tx)
	}
	jobs[1].Reply = jobs[1].Reply[:len(jobs[1].Reply):len(jobs[1].Reply)]
	s.RespondBatch(jobs)
	for i := range jobs {
		if jobs[i].Reason != ntp.ReasonOK || !bytes.Equal(jobs[i].Out, want[i]) {
			t.Fatalf("job %d: %v %x, want %x", i, jobs[i].Reason, jobs[i].Out, want[i])
		}
	}
}

// FuzzRespondBatch puts a fuzzed request (a valid one with one octet
// changed, or bytes of the fuzzer's own) between two good requests of
// other clients in one batch, and the batch must answer all three exactly
// as Respond answers each alone: whatever the middle one is, the others'
// replies do not change, and its own answer is Respond's.
func FuzzRespondBatch(f *testing.F) {
	fx := newNTSFixture(f)
	fx.resp.NTS.(*Server).Rand = sameBytes{}
	_, seed := fx.request(f, 6)
	f.Add(seed, uint16(0), uint8(0))
	f.Add(seed, uint16(60), uint8(1))     // inside the UID
	f.Add(seed, uint16(120), uint8(0x80)) // inside the cookie
	f.Add(seed, uint16(len(seed)-20), uint8(4))
	f.Add([]byte{0x23, 0, 0, 0}, uint16(0), uint8(0))
	var good [2][]byte
	for i := range good {
		fx.keys = testCookie(byte(80 + i))
		_, good[i] = fx.request(f, 8-3*i)
	}
	fx.keys = testCookie(7)
	f.Fuzz(func(t *testing.T, req []byte, at uint16, flip uint8) {
		if len(req) > ntp.MaxPacketLen {
			return
		}
		req = bytes.Clone(req)
		if len(req) > 0 {
			req[int(at)%len(req)] ^= flip
		}
		reqs := [3][]byte{good[0], req, good[1]}
		var jobs []ntp.NTSJob
		var at3 [3]int
		var got [3][]byte
		var gotV [3]ntp.Verdict
		for i, r := range reqs {
			var job ntp.NTSJob
			reply, v, deferred := fx.resp.RespondOrDefer(make([]byte, 0, ntp.MaxPacketLen), r, ntsClient, ntsRx, 0, &job)
			got[i], gotV[i], at3[i] = reply, v, -1
			if deferred {
				at3[i] = len(jobs)
				jobs = append(jobs, job)
			}
		}
		fx.resp.RespondNTS(jobs)
		for i, r := range reqs {
			if at3[i] >= 0 {
				got[i], gotV[i] = fx.resp.NTSResult(&jobs[at3[i]])
			}
			want, wantV := fx.resp.Respond(make([]byte, 0, ntp.MaxPacketLen), r, ntsClient, ntsRx)
			if !bytes.Equal(got[i], want) || gotV[i] != wantV {
				t.Fatalf("request %d of 3: batch %x %+v, alone %x %+v", i, got[i], gotV[i], want, wantV)
			}
		}
		if gotV[0].Action != ntp.ActionReply || gotV[2].Action != ntp.ActionReply {
			t.Fatalf("a good request beside a fuzzed one: %+v, %+v", gotV[0], gotV[2])
		}
	})
}
