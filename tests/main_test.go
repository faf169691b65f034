// Package tests holds timegate's integration tests: the real daemons (chronyd,
// timegate, gatectl) on loopback with unprivileged ports. The system clock is
// never touched: chronyd always runs with -x and without CAP_SYS_TIME.
package tests

import (
	"os"
	"testing"

	"timegate/tests/harness"
)

// build holds the timegate and gatectl executables, built once per run of
// this test binary; TestMain owns it, so no test mutates shared state.
var build *harness.Build

func TestMain(m *testing.M) {
	build = harness.NewBuild("..")
	code := m.Run()
	build.Close()
	os.Exit(code)
}
