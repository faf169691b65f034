package gateway

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"timegate/internal/config"
)

// The optional directories are checked where a write will happen: a dumpdir
// created at the first clean stop is judged by its nearest existing parent,
// and a logdir without a `log` line is never written, so never checked.
func TestOptionalWrites(t *testing.T) {
	root := t.TempDir()
	logs := filepath.Join(root, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		DriftFile: filepath.Join(root, "drift"),
		DumpDir:   filepath.Join(root, "not", "yet"),
		LogDir:    logs,
	}
	if got := optionalWrites(cfg); !slices.Equal(got, []string{root}) {
		t.Errorf("without log lines: %v, want [%s]", got, root)
	}
	cfg.Log.Tracking = true
	if got := optionalWrites(cfg); !slices.Equal(got, []string{root, logs}) {
		t.Errorf("with log tracking: %v, want [%s %s]", got, root, logs)
	}
	if got := optionalWrites(&config.Config{}); len(got) != 0 {
		t.Errorf("nothing configured: %v", got)
	}
}
