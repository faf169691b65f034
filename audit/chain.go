package audit

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"time"
)

// Chain is the state a writer carries from one record to the next: the
// last sequence number and the hash of the last line. The zero value starts
// a new file.
type Chain struct {
	Seq  uint64
	Prev Hash
	// SinceCheckpoint counts records after the last checkpoint (the first
	// uncovered one is Seq-SinceCheckpoint+1).
	SinceCheckpoint int
}

// Resume returns the chain that continues after line, the last complete
// record of a file.
func Resume(line []byte) (Chain, Record, error) {
	r, err := Parse(line)
	if err != nil {
		return Chain{}, r, err
	}
	c := Chain{Seq: r.Seq, Prev: HashLine(line)}
	if r.Type != TypeCheckpoint {
		// Not known how many records precede it unsigned; one is enough to
		// make the writer sign soon, which it does at start anyway.
		c.SinceCheckpoint = 1
	}
	return c, r, nil
}

// Append seals e as the next record at now and returns its line (no
// newline); the chain advances.
func (c *Chain) Append(e Event, now time.Time) []byte {
	e = e.sanitized()
	r := c.record(e, now)
	line := r.Encode()
	if len(line) > MaxEventLen {
		// Escaping can grow a string sixfold (<, >, & become \u003c...).
		r.Details = map[string]string{"truncated": "details dropped: record over " + strconv.Itoa(MaxEventLen) + " bytes"}
		r.Subject = Subject{Prefix: clip(r.Subject.Prefix, 64), Source: clip(r.Subject.Source, 64),
			KeyID: clip(r.Subject.KeyID, 64), User: clip(r.Subject.User, 64)}
		line = r.Encode()
	}
	c.advance(line)
	c.SinceCheckpoint++
	return line
}

func (c *Chain) record(e Event, now time.Time) Record {
	t := now
	if !e.Time.IsZero() {
		t = e.Time
	}
	return Record{
		V: Version, Seq: c.Seq + 1, Time: FormatTime(t), Type: e.Type, Outcome: e.Outcome,
		Subject: e.Subject, Details: e.Details, Prev: c.Prev.String(),
	}
}

func (c *Chain) advance(line []byte) {
	c.Seq++
	c.Prev = HashLine(line)
}

// Checkpoint appends a checkpoint signed by s at now and returns its line.
// Its details name the algorithm, the key's fingerprint and the first
// sequence number it newly covers.
func (c *Chain) Checkpoint(s *Signer, now time.Time) ([]byte, error) {
	from := c.Seq + 1 - uint64(c.SinceCheckpoint)
	r := c.record(Event{
		Type: TypeCheckpoint, Outcome: OutcomeSigned,
		Details: map[string]string{
			"alg": string(s.Public().Alg), "key": s.Public().Fingerprint(),
			"from": strconv.FormatUint(from, 10),
		},
	}, now)
	sig, err := s.Sign(r.Encode())
	if err != nil {
		return nil, fmt.Errorf("audit: signing checkpoint: %w", err)
	}
	r.Sig = base64.StdEncoding.EncodeToString(sig)
	line := r.Encode()
	c.advance(line)
	c.SinceCheckpoint = 0
	return line, nil
}
