package audit

import (
	"fmt"
	"strconv"
	"time"

	"timegate/audit"
)

// write appends batch (and an audit.dropped record when events were lost)
// as one write(2), adding checkpoints every CheckpointRecords records, and
// a final one when checkpoint is set. On failure the file is cut back and
// the chain rewound, so the chain on disk never has a hole; the batch's
// events are then counted as dropped.
func (w *Writer) write(batch []audit.Event, checkpoint bool) error {
	saved, savedFirst := w.chain, w.firstAt
	now := w.now()
	var buf []byte
	appendLine := func(line []byte) { buf = append(append(buf, line...), '\n') }
	sign := func() error {
		line, err := w.chain.Checkpoint(w.cfg.Signer, now)
		if err != nil {
			return err
		}
		appendLine(line)
		return nil
	}
	lost := uint64(len(batch))
	n := w.dropped.Swap(0)
	if n > 0 {
		batch = append([]audit.Event{{Type: audit.TypeDropped, Outcome: audit.OutcomeWarning,
			Details: map[string]string{"count": strconv.FormatUint(n, 10), "why": "audit queue full or write failed"}}}, batch...)
	}
	var err error
	for _, e := range batch {
		if w.chain.SinceCheckpoint == 0 {
			w.firstAt = now
		}
		appendLine(w.chain.Append(e, now))
		if w.chain.SinceCheckpoint >= w.cfg.CheckpointRecords {
			if err = sign(); err != nil {
				break
			}
		}
	}
	if err == nil && checkpoint && w.chain.SinceCheckpoint > 0 {
		err = sign()
	}
	if err == nil {
		err = w.commit(buf)
	}
	if err != nil {
		w.chain, w.firstAt = saved, savedFirst
		// The losses the audit.dropped record would have told go back to
		// be told next time; only the batch's own events are new losses
		// (the audit.dropped record itself is not an event).
		w.dropped.Add(n)
		w.drop(lost)
		w.fail(err)
		return err
	}
	return nil
}

// commit writes buf at the end of the file and syncs it.
func (w *Writer) commit(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := w.f.WriteAt(buf, w.size)
	if err == nil && !w.cfg.NoSync {
		err = w.f.Sync()
	}
	if err != nil {
		// Cut back a partial write so the next attempt starts on a line
		// boundary; if even that fails, the torn-line recovery at the next
		// start handles it.
		if n > 0 {
			w.f.Truncate(w.size)
		}
		return fmt.Errorf("writing %s: %w", w.cfg.Path, err)
	}
	w.size += int64(n)
	w.failing.Store(false)
	w.setPosition()
	w.seq.Store(w.chain.Seq)
	select {
	case w.notify <- struct{}{}:
	default:
	}
	return nil
}

func (w *Writer) now() time.Time {
	if w.cfg.Now != nil {
		return w.cfg.Now()
	}
	return time.Now()
}
