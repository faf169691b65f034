package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"timegate/audit"
	"timegate/internal/secfile"
)

// Rotation seals the live file with a checkpoint, gives it a segment name
// and starts a new live file whose first record (audit.segment) chains
// onto the seal. The order makes every crash point safe: the segment name
// is a hard link added while the live name still holds the whole file, and
// the new file takes the live name by rename only once its first record
// is on disk. So the live name always ends with the chain's newest record,
// and a crash leaves at most a spare link, which the next start removes.

// rotateRetry spaces out attempts after a failed rotation (full disk,
// permissions): the log keeps growing meanwhile, which is the safe side.
const rotateRetry = time.Minute

// RotateResult names the segment a rotation sealed and what retention
// deleted after it.
type RotateResult struct {
	Segment     string
	First, Last uint64
	Pruned      []string
}

type rotateReply struct {
	r   RotateResult
	err error
}

// Rotation is when the writer rotates and how many segments it keeps
// (WriterConfig's RotateSize, RotateEvery and Keep).
type Rotation struct {
	Size  int64
	Every time.Duration
	Keep  int
}

// SetRotation changes the rotation settings of a running writer (a
// configuration reload); they apply from its next check, within a second.
func (w *Writer) SetRotation(r Rotation) { w.rot.Store(&r) }

// Rotation returns the settings in force.
func (w *Writer) Rotation() Rotation { return *w.rot.Load() }

// Rotate seals the live file now (gatectl audit rotate).
func (w *Writer) Rotate() (RotateResult, error) {
	reply := make(chan rotateReply, 1)
	select {
	case w.rotateRq <- reply:
	case <-w.done:
		return RotateResult{}, errors.New("audit: the audit log is closed")
	}
	r := <-reply
	return r.r, r.err
}

// pruneIfDue retries retention that waited for the shipper, so that the
// segments an outage kept go once they are delivered, not only at the
// next rotation.
func (w *Writer) pruneIfDue() {
	if w.pruneAt.IsZero() || w.now().Before(w.pruneAt) {
		return
	}
	w.pruneAt = time.Time{}
	w.prune()
}

// rotateIfDue rotates when the live file has reached RotateSize or a
// RotateEvery boundary has passed since its first record.
func (w *Writer) rotateIfDue() {
	now := w.now()
	if now.Before(w.retryAt) {
		return
	}
	rot := w.Rotation()
	why := ""
	switch {
	case rot.Size > 0 && w.size >= rot.Size:
		why = "size"
	case rot.Every > 0 && !now.Before(w.started.Truncate(rot.Every).Add(rot.Every)):
		why = "interval"
	default:
		return
	}
	if _, err := w.rotate(why); err != nil {
		w.retryAt = w.now().Add(rotateRetry)
		w.log.Error("audit log rotation failed; the live file keeps growing, next attempt in a minute",
			zap.String("file", w.cfg.Path), zap.Error(err))
	}
}

func (w *Writer) rotate(why string) (RotateResult, error) {
	r, err := w.rotateOnce(why)
	if err != nil {
		s := err.Error()
		w.rotateErr.Store(&s)
	} else {
		w.rotateErr.Store(nil)
	}
	return r, err
}

func (w *Writer) rotateOnce(why string) (RotateResult, error) {
	// The seal: a segment ends with a checkpoint, so it verifies alone.
	if err := w.write(nil, true); err != nil {
		return RotateResult{}, err
	}
	res := RotateResult{Segment: audit.SegmentName(w.cfg.Path, w.first), First: w.first, Last: w.chain.Seq}
	if err := w.link(res.Segment); err != nil {
		return RotateResult{}, err
	}
	saved := w.chain
	now := w.now()
	line := w.chain.Append(audit.Event{Type: audit.TypeSegment, Outcome: audit.OutcomeOK, Details: map[string]string{
		"segment": filepath.Base(res.Segment), "last_seq": strconv.FormatUint(res.Last, 10), "why": why}}, now)
	nf, err := w.startFile(append(line, '\n'))
	if err != nil {
		w.chain = saved
		os.Remove(res.Segment)
		return RotateResult{}, fmt.Errorf("starting a new %s: %w", w.cfg.Path, err)
	}
	w.f.Close()
	w.segments.Add(1)
	w.segBytes.Add(w.size)
	w.f, w.size, w.first, w.firstAt, w.started = nf, int64(len(line)+1), saved.Seq+1, now, now
	w.setPosition()
	w.seq.Store(w.chain.Seq)
	select {
	case w.notify <- struct{}{}:
	default:
	}
	w.log.Info("audit log rotated", zap.String("segment", res.Segment), zap.Uint64("first_seq", res.First),
		zap.Uint64("last_seq", res.Last), zap.String("why", why))
	res.Pruned = w.prune()
	return res, nil
}

// link gives the live file its segment name. A link left by a rotation
// that crashed before its rename is the same file and is reused.
func (w *Writer) link(seg string) error {
	err := os.Link(w.cfg.Path, seg)
	if errors.Is(err, fs.ErrExist) {
		a, aerr := os.Stat(w.cfg.Path)
		b, berr := os.Stat(seg)
		if aerr == nil && berr == nil && os.SameFile(a, b) {
			return nil
		}
		return fmt.Errorf("segment %s already exists and is another file; move it aside", seg)
	}
	if err != nil {
		return fmt.Errorf("naming the segment: %w", err)
	}
	return nil
}

// startFile writes the new live file's first line under a temporary name
// and renames it over the live name.
func (w *Writer) startFile(first []byte) (*os.File, error) {
	tmp := w.cfg.Path + ".rotating"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	// Synced whatever NoSync says: this line is what links the new file to
	// the sealed one, and the rename below must not outlive it.
	if _, err = f.Write(first); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, w.cfg.Path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := secfile.SyncDir(filepath.Dir(w.cfg.Path)); err != nil {
		w.log.Warn("audit log rotation: directory not synced", zap.Error(err))
	}
	return f, nil
}

// dropStaleLink removes the spare segment name a crash between link and
// rename left on the live file (the next rotation makes it again).
func (w *Writer) dropStaleLink() {
	seg := audit.SegmentName(w.cfg.Path, w.first)
	a, aerr := os.Stat(w.cfg.Path)
	b, berr := os.Stat(seg)
	if aerr == nil && berr == nil && os.SameFile(a, b) {
		os.Remove(seg)
	}
	os.Remove(w.cfg.Path + ".rotating")
}

// resumeFromSegment continues the chain from the newest segment when the
// live file is empty. Rotation never leaves it so; someone removed it, and
// the first record says so: the records it held are not in this chain,
// and nothing else would show their absence.
func (w *Writer) resumeFromSegment() ([]audit.Event, error) {
	segs, err := listSegments(w.cfg.Path)
	if err != nil || len(segs) == 0 {
		return nil, err
	}
	newest := segs[len(segs)-1]
	f, err := os.Open(newest.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := readTail(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", newest.path, err)
	}
	w.chain = st.chain
	w.log.Warn("audit file missing or empty while rotated segments exist; the chain continues after the newest segment",
		zap.String("file", w.cfg.Path), zap.String("segment", newest.path), zap.Uint64("last_seq", st.chain.Seq))
	return []audit.Event{{Type: audit.TypeRecovered, Outcome: audit.OutcomeWarning, Details: map[string]string{
		"why":      "the live audit file was missing or empty; records written after the newest segment, if any, are not in this chain",
		"segment":  filepath.Base(newest.path),
		"last_seq": strconv.FormatUint(st.chain.Seq, 10)}}}, nil
}

// prune deletes the oldest segments beyond Keep, oldest first, stopping at
// one the shipper still needs: a hole in the middle of the set would look
// like tampering, and an undelivered record must not be lost to retention.
// Each deletion is recorded (audit.segment.prune) before the file goes, so
// no crash leaves a segment gone without the record that tells a verifier
// retention removed it; a record whose deletion then failed is followed by
// another at the next attempt.
func (w *Writer) prune() []string {
	keep := w.Rotation().Keep
	if keep <= 0 {
		return nil
	}
	segs, err := listSegments(w.cfg.Path)
	if err != nil {
		w.log.Error("audit log retention: cannot list segments", zap.Error(err))
		return nil
	}
	var pin uint64
	if f := w.pin.Load(); f != nil {
		pin = (*f)()
	}
	var pruned []string
	for i := 0; i < len(segs)-keep; i++ {
		last := w.first - 1
		if i+1 < len(segs) {
			last = segs[i+1].first - 1
		}
		if pin != 0 && last >= pin {
			w.pruneAt = w.now().Add(rotateRetry)
			w.log.Warn("audit log retention: keeping segments beyond auditrotate keep until the collector has them",
				zap.String("segment", segs[i].path), zap.Uint64("undelivered_from_seq", pin), zap.Int("keep", keep))
			break
		}
		fi, err := os.Stat(segs[i].path)
		if err == nil {
			err = w.write([]audit.Event{{Type: audit.TypeSegmentPrune, Outcome: audit.OutcomeOK, Details: map[string]string{
				"segment": filepath.Base(segs[i].path), "first_seq": strconv.FormatUint(segs[i].first, 10),
				"last_seq": strconv.FormatUint(last, 10)}}}, false)
		}
		if err == nil {
			err = os.Remove(segs[i].path)
		}
		if err != nil {
			w.log.Error("audit log retention: cannot record or delete a segment; it stays", zap.String("segment", segs[i].path), zap.Error(err))
			break
		}
		w.segments.Add(-1)
		w.segBytes.Add(-fi.Size())
		pruned = append(pruned, segs[i].path)
	}
	return pruned
}
