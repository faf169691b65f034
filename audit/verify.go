package audit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Problem names the first record where the evidence fails. Line is 1-based
// within File; Seq is the record's sequence number when known (0
// otherwise). File is the name given to NextFile, empty when none was.
type Problem struct {
	File   string
	Line   int
	Seq    uint64
	Reason string
}

func (p *Problem) Error() string {
	at := fmt.Sprintf("line %d", p.Line)
	if p.File != "" {
		at = p.File + ": " + at
	}
	if p.Seq != 0 {
		return fmt.Sprintf("%s (seq %d): %s", at, p.Seq, p.Reason)
	}
	return fmt.Sprintf("%s: %s", at, p.Reason)
}

// VerifyOptions say what Verify requires.
type VerifyOptions struct {
	// Key verifies checkpoints; nil checks the chain only and counts the
	// checkpoints as unverified.
	Key *PublicKey
	// Live accepts what a file that is still being written may end with:
	// records after the last checkpoint and an incomplete last line. Without
	// it those are reported, since they are what truncation past a
	// checkpoint leaves (a cleanly stopped gateway ends its file with one).
	// With several files (NextFile) it applies to the last one only: a
	// sealed segment was complete when it was renamed.
	Live bool
	// Dedup accepts what a collector's copy holds: records delivered more
	// than once (at-least-once shipping re-sends after a reconnect). A
	// record whose seq was already seen is skipped when it is byte for
	// byte the earlier copy, and is a Problem when it differs or when the
	// earlier copy is older than DedupWindow records (it cannot be
	// compared then). Memory stays fixed (DedupWindow hashes).
	Dedup bool
}

// DedupWindow is how far back Dedup compares a repeated record: far more
// than a shipper ever re-sends (its window plus what a crash leaves
// unacknowledged).
const DedupWindow = 1 << 16

type seenRecord struct {
	seq  uint64
	hash Hash
}

// Summary describes what verified: one file, or several as one chain.
type Summary struct {
	Records        int
	FirstSeq       uint64
	LastSeq        uint64
	Checkpoints    int
	Unverified     int    // checkpoints not checked (no key)
	LastCheckpoint uint64 // seq of the last checkpoint, 0 if none
	Unsigned       int    // records after the last checkpoint
	Duplicates     int    // repeated records skipped (Dedup)
	// StartsAtSegment: the first record is a TypeSegment record, so the
	// chain starts at a rotation boundary and the records before FirstSeq
	// are in earlier segments that were not given (or were pruned).
	StartsAtSegment bool
	// HeadPrunedBy, when the chain starts at a segment, is the seq of the
	// TypeSegmentPrune record in the chain that deleted the segment ending
	// right before FirstSeq: retention removed the head, and said so in
	// the signed chain. Retention deletes oldest first and records each
	// deletion in the live file, which is newer than every segment left,
	// so a complete set of files always holds that record; 0 means the
	// files before FirstSeq were not given, or were deleted some other way.
	HeadPrunedBy uint64
}

// Verifier checks a file line by line; feed it with Line, then call End.
// For a rotated log, call NextFile before each file's first line: the
// files are then checked as one chain. Memory is constant: it keeps one
// record and one hash. After a Problem the verifier must not be fed more.
type Verifier struct {
	opts        VerifyOptions
	sum         Summary
	file        string
	files       int // NextFile calls
	line        int // within file
	fileRecords int
	prev        Record
	prevHash    Hash
	firstUncov  int // line of the first record after the last checkpoint
	seen        []seenRecord
}

// NewVerifier returns a verifier.
func NewVerifier(opts VerifyOptions) *Verifier { return &Verifier{opts: opts} }

// NextFile starts file name. When a file came before it, that file is
// ended first as a sealed segment, whatever opts.Live says (torn says it
// ended inside a line): only the last file of a rotated log may still be
// being written, and a segment is sealed with a checkpoint before it is
// renamed. The chain runs on across the boundary.
func (v *Verifier) NextFile(name string, torn bool) *Problem {
	if v.files > 0 || v.line > 0 {
		if p := v.endFile(torn); p != nil {
			return v.named(p)
		}
	}
	v.file, v.files, v.line, v.fileRecords = name, v.files+1, 0, 0
	return nil
}

// named attributes p to the current file.
func (v *Verifier) named(p *Problem) *Problem {
	if p != nil {
		p.File = v.file
	}
	return p
}

// Line checks the next line (without its newline).
func (v *Verifier) Line(line []byte) *Problem {
	return v.named(v.check(line))
}

func (v *Verifier) check(line []byte) *Problem {
	v.line++
	r, err := Parse(line)
	if err != nil {
		return &Problem{Line: v.line, Reason: "not a valid record (edited?): " + err.Error()}
	}
	if v.opts.Dedup && v.sum.Records > 0 && r.Seq <= v.prev.Seq {
		return v.duplicate(r, line)
	}
	if p := v.link(r); p != nil {
		return p
	}
	if p := v.signature(r); p != nil {
		return p
	}
	if v.sum.Records == 0 {
		v.sum.FirstSeq = r.Seq
		v.sum.StartsAtSegment = r.Type == TypeSegment
	}
	if r.Type == TypeSegmentPrune && v.sum.StartsAtSegment && v.sum.HeadPrunedBy == 0 &&
		r.Details["last_seq"] == strconv.FormatUint(v.sum.FirstSeq-1, 10) {
		v.sum.HeadPrunedBy = r.Seq
	}
	v.sum.Records++
	v.fileRecords++
	v.sum.LastSeq = r.Seq
	if r.Type == TypeCheckpoint {
		v.sum.Checkpoints++
		v.sum.LastCheckpoint = r.Seq
		v.sum.Unsigned = 0
	} else {
		if v.sum.Unsigned == 0 {
			v.firstUncov = v.line
		}
		v.sum.Unsigned++
	}
	v.prev, v.prevHash = r, HashLine(line)
	if v.opts.Dedup {
		if v.seen == nil {
			v.seen = make([]seenRecord, DedupWindow)
		}
		v.seen[r.Seq%DedupWindow] = seenRecord{r.Seq, v.prevHash}
	}
	return nil
}

// duplicate checks a record whose seq was already seen (Dedup).
func (v *Verifier) duplicate(r Record, line []byte) *Problem {
	s := v.seen[r.Seq%DedupWindow]
	switch {
	case s.seq != r.Seq:
		return &Problem{Line: v.line, Seq: r.Seq, Reason: fmt.Sprintf("repeats seq %d from more than %d records back: cannot compare it with the first copy", r.Seq, DedupWindow)}
	case s.hash != HashLine(line):
		return &Problem{Line: v.line, Seq: r.Seq, Reason: fmt.Sprintf("a second copy of seq %d differs from the first", r.Seq)}
	}
	v.sum.Duplicates++
	return nil
}

// link checks r against the record before it.
func (v *Verifier) link(r Record) *Problem {
	if v.sum.Records == 0 {
		// A segment record's prev is the hash of a line in a file not
		// given, so it cannot be checked; the records after it are
		// chained to it. Cutting the head off a segment cannot leave one
		// first: the records after it would no longer link.
		if r.Type != TypeSegment && (r.Seq != 1 || r.Prev != (Hash{}).String()) {
			return &Problem{Line: v.line, Seq: r.Seq, Reason: "the file does not start the chain (want seq 1 with prev all zeros, or an " + string(TypeSegment) + " record after a rotation): records before it were removed"}
		}
		return nil
	}
	if r.Seq != v.prev.Seq+1 && v.line == 1 {
		return &Problem{Line: v.line, Seq: r.Seq, Reason: fmt.Sprintf("the file starts at seq %d but the one before it ended at seq %d: a segment is missing or the files are out of order", r.Seq, v.prev.Seq)}
	}
	if r.Seq != v.prev.Seq+1 {
		return &Problem{Line: v.line, Seq: r.Seq, Reason: fmt.Sprintf("seq %d follows seq %d: records were removed, inserted or reordered", r.Seq, v.prev.Seq)}
	}
	if r.Prev != v.prevHash.String() {
		// The numbering is intact, so nothing was removed here: the
		// record before this one is not the one this record chained to.
		return &Problem{Line: v.line - 1, Seq: v.prev.Seq, Reason: fmt.Sprintf("record altered: its hash does not match the prev of seq %d", r.Seq)}
	}
	return nil
}

// signature checks a checkpoint's signature; other records carry none.
func (v *Verifier) signature(r Record) *Problem {
	bad := func(reason string) *Problem { return &Problem{Line: v.line, Seq: r.Seq, Reason: reason} }
	if r.Type != TypeCheckpoint {
		if r.Sig != "" {
			return bad("a signature on a record that is not a checkpoint")
		}
		return nil
	}
	sig, err := base64.StdEncoding.DecodeString(r.Sig)
	if err != nil || len(sig) == 0 {
		return bad("checkpoint without a valid signature")
	}
	if v.opts.Key == nil {
		v.sum.Unverified++
		return nil
	}
	if r.Details["alg"] != string(v.opts.Key.Alg) || r.Details["key"] != v.opts.Key.Fingerprint() {
		return bad(fmt.Sprintf("checkpoint signed by another key (%s %s; want %s %s)",
			r.Details["alg"], r.Details["key"], v.opts.Key.Alg, v.opts.Key.Fingerprint()))
	}
	unsigned := r
	unsigned.Sig = ""
	if !v.opts.Key.Verify(unsigned.Encode(), sig) {
		return bad("forged checkpoint: the signature does not verify")
	}
	return nil
}

// End finishes the last file; torn says the input ended inside a line.
func (v *Verifier) End(torn bool) (Summary, *Problem) {
	if v.opts.Live {
		return v.sum, nil
	}
	return v.sum, v.named(v.endFile(torn))
}

// endFile checks how a file that is no longer written ends.
func (v *Verifier) endFile(torn bool) *Problem {
	if torn {
		return &Problem{Line: v.line + 1, Reason: "incomplete last line: the file was truncated (or is being written; -live)"}
	}
	if v.fileRecords == 0 {
		return &Problem{Line: 1, Reason: "no records"}
	}
	if v.sum.Unsigned > 0 {
		return &Problem{Line: v.firstUncov, Seq: v.sum.LastSeq - uint64(v.sum.Unsigned) + 1,
			Reason: fmt.Sprintf("not covered by a signed checkpoint (%d records up to seq %d): the file was truncated past its last checkpoint, or is still being written (-live)", v.sum.Unsigned, v.sum.LastSeq)}
	}
	return nil
}

// Verify reads a whole audit file from r. The error is a *Problem for bad
// evidence, anything else for a read failure.
func Verify(r io.Reader, opts VerifyOptions) (Summary, error) {
	v := NewVerifier(opts)
	torn, err := v.feed(r)
	if err != nil {
		return v.sum, err
	}
	return v.end(torn)
}

// VerifyFiles verifies the files of a rotated log, oldest first, as one
// chain: sealed segments, then (usually) the live file. open is called
// for one file at a time, and each is closed before the next is opened.
// Problems name their file; the error is a *Problem for bad evidence,
// anything else for a failure to open or read.
func VerifyFiles(names []string, open func(name string) (io.ReadCloser, error), opts VerifyOptions) (Summary, error) {
	if len(names) == 0 {
		return Summary{}, errors.New("audit: no files to verify")
	}
	v := NewVerifier(opts)
	torn := false
	for _, name := range names {
		if p := v.NextFile(name, torn); p != nil {
			return v.sum, p
		}
		f, err := open(name)
		if err != nil {
			return v.sum, err
		}
		torn, err = v.feed(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return v.sum, err
		}
	}
	return v.end(torn)
}

// end is End with an error for a return value: a nil *Problem must not
// become a non-nil error.
func (v *Verifier) end(torn bool) (Summary, error) {
	sum, p := v.End(torn)
	if p != nil {
		return sum, p
	}
	return sum, nil
}

// feed gives v every complete line of r and says whether r ended inside
// a line. The error is a *Problem or a read failure.
func (v *Verifier) feed(r io.Reader) (bool, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, torn, err := readLine(br)
		if err == io.EOF {
			return torn, nil
		}
		if err != nil {
			if errors.Is(err, ErrTooLong) {
				return false, v.named(&Problem{Line: v.line + 1, Reason: "line longer than the format allows"})
			}
			return false, err
		}
		if p := v.Line(line); p != nil {
			return false, p
		}
	}
}

// readLine returns the next complete line without its newline. At the end
// it returns io.EOF, with torn set when bytes without a newline were left.
// A line longer than MaxLineLen is ErrTooLong: memory stays bounded.
func readLine(br *bufio.Reader) ([]byte, bool, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLineLen+1 {
			return nil, false, ErrTooLong
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return bytes.TrimSuffix(buf, []byte("\n")), false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			return nil, len(buf) > 0, io.EOF
		default:
			return nil, false, err
		}
	}
}
