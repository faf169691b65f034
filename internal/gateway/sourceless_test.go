package gateway

import (
	"strings"
	"testing"

	"timegate/internal/config"
)

// The directives that act on the upstream engine say so when there is none.
func TestSourcelessWarnings(t *testing.T) {
	cfg, err := config.Parse("t.conf", []byte("local stratum 10\ndriftfile /tmp/x\ndumpdir /tmp/d\nmakestep 1 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(syncWarnings(cfg, nil), "\n")
	for _, want := range []string{"t.conf:2: driftfile: no effect without upstream sources", "t.conf:3: dumpdir:", "t.conf:4: makestep:"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings %q lack %q", got, want)
		}
	}
}
