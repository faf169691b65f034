package audit

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"timegate/audit"
)

// WriterConfig configures a Writer. Zero values take the defaults.
type WriterConfig struct {
	Path   string
	Signer *audit.Signer // required: checkpoints are the point
	// CheckpointRecords and CheckpointInterval: a checkpoint is written
	// after this many records or this long after the first record it
	// would cover, whichever comes first; also at start and at stop.
	CheckpointRecords  int
	CheckpointInterval time.Duration
	// NoSync skips the fsync after each batch (faster; a crash may lose
	// the last records, which the chain then simply does not have).
	NoSync bool
	// QueueLen bounds the events waiting to be written; more are counted
	// and reported in an audit.dropped record.
	QueueLen int
	// RotateSize seals the live file and renames it to a segment once it
	// holds this many bytes (0: never). Keep is how many sealed segments
	// stay (0: all); older ones are deleted, oldest first, but never one
	// holding a seq at or above what SetPin's function returns.
	RotateSize int64
	Keep       int
	// RotateEvery also seals the live file once a boundary of the UTC
	// clock (a multiple of this long, counted from 0001-01-01: every 24 h
	// is at midnight) has passed since its first record (0: never).
	RotateEvery time.Duration
	Now         func() time.Time
	Log         *zap.Logger
}

// Defaults.
const (
	DefaultCheckpointRecords  = 1000
	DefaultCheckpointInterval = time.Minute
	DefaultQueueLen           = 4096
	// maxBatch bounds one write (and so the writer's buffer): 256 records
	// of at most MaxLineLen is 4 MiB in the very worst case.
	maxBatch = 256
)

// Writer appends records to the audit file from its own goroutine.
type Writer struct {
	cfg     WriterConfig
	log     *zap.Logger
	f       *os.File
	chain   audit.Chain
	size    int64
	firstAt time.Time // time of the first record after the last checkpoint

	queue   chan audit.Event
	quit    chan struct{}
	done    chan struct{}
	stop    sync.Once
	final   audit.Event
	dropped atomic.Uint64 // lost and not yet in an audit.dropped record
	// droppedTotal never resets: dropped goes back to 0 once recorded, so
	// a reader sampling it could miss a loss entirely.
	droppedTotal atomic.Uint64
	seq          atomic.Uint64 // last written seq
	notify       chan struct{}
	lastErr      atomic.Pointer[string]
	// failing is set by a failed write and cleared by the next one that
	// reaches the disk: lastErr alone cannot tell a past failure from one
	// that is still losing records.
	failing atomic.Bool
	// segments and segBytes count the sealed segments and their bytes
	// (Stats), kept by the writer goroutine as it rotates and prunes.
	segments, segBytes atomic.Int64
	rotateErr          atomic.Pointer[string] // the last rotation's failure; nil after a success
	rot                atomic.Pointer[Rotation]

	first    uint64    // seq of the live file's first record
	started  time.Time // time of the live file's first record (RotateEvery)
	posMu    sync.Mutex
	pos      Position
	pin      atomic.Pointer[func() uint64]
	rotateRq chan chan rotateReply
	retryAt  time.Time // after a failed rotation, when to try again
	pruneAt  time.Time // when retention held segments for the shipper: when to look again
}

// Position is where the live file stands: the seq its first record has
// (which names it once it is rotated out) and how many of its bytes hold
// complete, written (and synced) lines. A reader holding a file whose
// first seq is not First holds a sealed segment.
type Position struct {
	First   uint64
	Durable int64
}

// OpenWriter opens (or creates) the audit file, resumes its chain, cuts a
// torn last line, writes start-up records (recovery note, then first) and a
// checkpoint, and starts the writing goroutine.
func OpenWriter(cfg WriterConfig, first audit.Event) (*Writer, error) {
	if cfg.Signer == nil {
		return nil, fmt.Errorf("audit: writer needs a signing key")
	}
	cfg.CheckpointRecords = cmp(cfg.CheckpointRecords, DefaultCheckpointRecords)
	cfg.QueueLen = cmp(cfg.QueueLen, DefaultQueueLen)
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	st, err := readTail(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s: %w", cfg.Path, err)
	}
	w := &Writer{cfg: cfg, log: cfg.Log, f: f, chain: st.chain, size: st.size,
		queue: make(chan audit.Event, cfg.QueueLen), quit: make(chan struct{}), done: make(chan struct{}),
		notify: make(chan struct{}, 1), rotateRq: make(chan chan rotateReply)}
	w.SetRotation(Rotation{Size: cfg.RotateSize, Every: cfg.RotateEvery, Keep: cfg.Keep})
	var initial []audit.Event
	if st.size == 0 && len(st.torn) == 0 {
		resumed, err := w.resumeFromSegment()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("audit: %w", err)
		}
		initial = append(initial, resumed...)
	}
	if len(st.torn) > 0 {
		if err := f.Truncate(st.size); err != nil {
			f.Close()
			return nil, fmt.Errorf("audit: cutting the torn last line: %w", err)
		}
		w.log.Warn("audit file ended in an incomplete line (crash?); cut it off and recorded that",
			zap.String("file", cfg.Path), zap.Int("bytes", len(st.torn)))
		initial = append(initial, recoveredEvent(st.torn))
	}
	initial = append(initial, first)
	w.first, w.started = w.chain.Seq+1, w.now()
	if r, ok := firstRecord(f); ok && st.size > 0 {
		w.first, w.started = r.Seq, r.ParsedTime()
	}
	w.dropStaleLink()
	w.countSegments()
	// Signing at once seals whatever an earlier run left unsigned.
	if err := w.write(initial, true); err != nil {
		f.Close()
		return nil, err
	}
	go w.run()
	return w, nil
}

func cmp(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Record queues e; it never blocks.
func (w *Writer) Record(e audit.Event) {
	select {
	case <-w.quit:
		w.drop(1)
		return
	default:
	}
	select {
	case w.queue <- e:
	default:
		w.drop(1)
	}
}

// drop counts n events lost before reaching the file.
func (w *Writer) drop(n uint64) {
	w.dropped.Add(n)
	w.droppedTotal.Add(n)
}

// Close writes what is queued, then final, then a checkpoint, syncs and
// closes the file. It returns the last write error, if any.
func (w *Writer) Close(final audit.Event) error {
	w.stop.Do(func() {
		w.final = final
		close(w.quit)
	})
	<-w.done
	if p := w.lastErr.Load(); p != nil {
		return fmt.Errorf("audit: %s", *p)
	}
	return nil
}

// Position returns the live file's first seq and durable end (complete,
// written records, synced unless NoSync); a reader never sees a partial
// line below it.
func (w *Writer) Position() Position {
	w.posMu.Lock()
	defer w.posMu.Unlock()
	return w.pos
}

func (w *Writer) setPosition() {
	w.posMu.Lock()
	w.pos = Position{First: w.first, Durable: w.size}
	w.posMu.Unlock()
}

// SetPin names the lowest seq that retention must keep on disk (the
// shipper's first undelivered record); 0 from f pins nothing.
func (w *Writer) SetPin(f func() uint64) { w.pin.Store(&f) }

// Notify is signalled after each write.
func (w *Writer) Notify() <-chan struct{} { return w.notify }

// Path is the audit file.
func (w *Writer) Path() string { return w.cfg.Path }

// Seq returns the last sequence number written.
func (w *Writer) Seq() uint64 { return w.seq.Load() }

// Dropped returns events lost to a full queue or a write error since the
// last audit.dropped record.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

func (w *Writer) run() {
	defer close(w.done)
	tick := time.NewTicker(min(w.cfg.CheckpointInterval, time.Second))
	defer tick.Stop()
	batch := make([]audit.Event, 0, maxBatch)
	for {
		select {
		case e := <-w.queue:
			batch = w.fill(append(batch[:0], e))
			w.writeLogged(batch, false)
			w.rotateIfDue()
		case <-tick.C:
			if w.chain.SinceCheckpoint > 0 && w.now().Sub(w.firstAt) >= w.cfg.CheckpointInterval {
				w.writeLogged(nil, true)
			}
			w.rotateIfDue()
			w.pruneIfDue()
		case reply := <-w.rotateRq:
			r, err := w.rotate("command")
			reply <- rotateReply{r, err}
		case <-w.quit:
			for {
				batch = w.fill(batch[:0])
				if len(batch) == 0 {
					break
				}
				w.writeLogged(batch, false)
			}
			w.writeLogged([]audit.Event{w.final}, true)
			if err := w.f.Close(); err != nil {
				w.fail(err)
				w.log.Error("closing the audit log failed; its last records may not be on disk", zap.Error(err))
			}
			return
		}
	}
}

// fill takes what else is queued, up to maxBatch, without waiting: group
// commit, one write and one fsync for a burst.
func (w *Writer) fill(batch []audit.Event) []audit.Event {
	for len(batch) < maxBatch {
		select {
		case e := <-w.queue:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

func (w *Writer) writeLogged(batch []audit.Event, checkpoint bool) {
	if err := w.write(batch, checkpoint); err != nil {
		w.log.Error("audit log write failed; events are counted as dropped", zap.Error(err))
	}
}

// fail keeps err for Close and Stats and marks the log failing until a
// write succeeds.
func (w *Writer) fail(err error) {
	s := err.Error()
	w.lastErr.Store(&s)
	w.failing.Store(true)
}

// WriterStats is what a status or metrics reader sees of the writer.
type WriterStats struct {
	Path string
	Seq  uint64 // last record written
	// DroppedTotal counts events lost since start (queue full, a failed
	// write, or recorded after Close); it never goes back down.
	DroppedTotal uint64
	// Failing: the last write failed and records are being lost; the next
	// write that reaches the disk clears it. LastError stays after that,
	// as the most recent failure.
	Failing   bool
	LastError string
	// RotateError is why the last rotation failed (the live file then
	// keeps growing; it is tried again every minute); empty once one
	// succeeds.
	RotateError string
	// Segments is how many sealed segments lie beside the live file, and
	// DiskBytes the size of the live file and those segments together.
	Segments  int
	DiskBytes int64
}

// Stats returns a snapshot without touching the disk: a readiness probe
// calls it, and must not hang on a stuck filesystem. The segments are
// counted at start and kept up to date by rotation and retention; files
// added or removed by hand show at the next start.
func (w *Writer) Stats() WriterStats {
	st := WriterStats{Path: w.cfg.Path, Seq: w.Seq(), DroppedTotal: w.droppedTotal.Load(), Failing: w.failing.Load(),
		Segments: int(w.segments.Load()), DiskBytes: w.Position().Durable + w.segBytes.Load()}
	if p := w.lastErr.Load(); p != nil {
		st.LastError = *p
	}
	if p := w.rotateErr.Load(); p != nil {
		st.RotateError = *p
	}
	return st
}

// countSegments counts the sealed segments for Stats, at start.
func (w *Writer) countSegments() {
	segs, _ := listSegments(w.cfg.Path)
	for _, s := range segs {
		if fi, err := os.Stat(s.path); err == nil {
			w.segments.Add(1)
			w.segBytes.Add(fi.Size())
		}
	}
}
