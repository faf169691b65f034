package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"

	"timegate/internal/secfile"
	"timegate/upstream"
)

// driftSaveInterval is how often a running gateway rewrites its drift file, besides the
// first fitted frequency after start and the clean stop: chrony's hourly rhythm, so that
// after a crash the file is at most an hour behind, at one small write an hour.
const driftSaveInterval = time.Hour

// drift is the drift file's state; the loop goroutine owns it.
type drift struct {
	path    string
	saved   upstream.Drift // what the file holds, as far as this run knows
	savedAt time.Time      // system time of this run's last write; zero before the first
}

// restoreDrift reads the drift file at start and starts the soft clock on it. Every
// reason not to use the file (missing, unsafe, chronyd's, old, implausible) is a warning:
// the gateway then starts cold, as without a drift file, and overwrites the file with its
// own estimate once it has one.
func (e *Engine) restoreDrift(sys time.Time) []string {
	path := e.opts.DriftFile
	if path == "" {
		return nil
	}
	where := fmt.Sprintf("driftfile %s", path)
	if e.opts.Discipliner != nil {
		e.drift.path = "" // under clockcontrol on, neither read nor written
		return []string{where + ": not used with clockcontrol on: the kernel keeps the frequency it was last given across a restart of timegate, so a saved frequency could be applied twice"}
	}
	e.drift.path = path
	data, err := readStateFile(path, upstream.MaxDriftFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		e.log.Info("no drift file yet: starting on a cold frequency estimate", zap.String("driftfile", path))
		return nil
	}
	var d upstream.Drift
	if err == nil {
		d, err = upstream.ParseDrift(data)
	}
	if err == nil {
		err = e.clock.Restore(sys, d)
	}
	if err != nil {
		return []string{fmt.Sprintf("%s: ignored, starting cold (the file is replaced once a frequency is fitted): %v", where, err)}
	}
	e.drift.saved = d
	e.log.Info("frequency restored from the drift file", zap.String("driftfile", path),
		zap.Float64("frequency_ppm", d.Freq*1e6), zap.Float64("skew_ppm", d.Skew*1e6), zap.Time("estimated", d.At))
	return nil
}

// readStateFile reads a drift or dump file that only root or this process's user can
// have written, at most limit bytes (one more, for the parser to refuse): a forged
// frequency or forged samples with a small claimed uncertainty would make the gateway
// serve wrong time with a small root dispersion until its own measurements replace them.
func readStateFile(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("mode %04o lets others write it (want 0644 or stricter)", perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("owned by uid %d, neither root nor this process's", st.Uid)
	}
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// saveDrift writes the soft clock's frequency when it has one worth keeping that the file
// does not hold yet: at once the first time in a run, then at most every
// driftSaveInterval, and always when final (the clean stop).
func (r *runner) saveDrift(sys time.Time, final bool) {
	if r.drift.path == "" {
		return
	}
	d, ok := r.clock.Drift()
	if !ok || d == r.drift.saved {
		return
	}
	if !final && !r.drift.savedAt.IsZero() && sys.Sub(r.drift.savedAt) < driftSaveInterval {
		return
	}
	r.drift.savedAt = sys
	data, _ := d.AppendText(nil)
	// 0644 as chronyd's: the frequency is no secret; writes are atomic so a crash never
	// leaves a half-written file for the next start to misread.
	if err := secfile.WriteAtomic(r.drift.path, data, 0o644); err != nil {
		r.log.Warn("cannot save the frequency to the drift file", zap.Error(err))
		return
	}
	r.drift.saved = d
	r.log.Debug("drift file saved", zap.Float64("frequency_ppm", d.Freq*1e6), zap.Float64("skew_ppm", d.Skew*1e6))
}
