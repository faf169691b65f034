package gateway

import (
	"os"
	"testing"

	"timegate/internal/keproc"
)

// TestMain lets this test binary serve as the NTS-KE helper the gateways
// under test start (ntsprocesses): they run their own program again.
func TestMain(m *testing.M) {
	if keproc.IsHelper() {
		os.Exit(keproc.HelperMain())
	}
	os.Exit(m.Run())
}
