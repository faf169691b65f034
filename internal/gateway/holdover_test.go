package gateway

import (
	"testing"
	"time"
)

// Campaign finding: `holdover 0` silently meant 3600 s. The directive's 0
// reaches the engine as "none", never as its zero value (the default).
func TestHoldoverZeroMeansNone(t *testing.T) {
	if got := holdoverOption(0); got >= 0 {
		t.Errorf("holdover 0 → %v, want negative (no holdover)", got)
	}
	if got := holdoverOption(90 * time.Second); got != 90*time.Second {
		t.Errorf("holdover 90 → %v", got)
	}
}
