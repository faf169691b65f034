package main

import (
	"strings"
	"testing"
	"time"

	"timegate/internal/report"
)

// `gatectl status` names the leap-second table and says loudly when it has
// expired.
func TestPrintStatusLeapTable(t *testing.T) {
	exp := time.Date(2026, 6, 28, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		st   report.Status
		want string
	}{
		{report.Status{LeapTable: "/l.list", LeapTableEntries: 28, LeapTableExpires: exp}, "Leap table      : /l.list (28 entries, expires 2026-06-28)"},
		{report.Status{LeapTable: "/l.list", LeapTableEntries: 28, LeapTableExpires: exp, LeapTableExpired: true}, "EXPIRED 2026-06-28: the upstream vote decides"},
		{report.Status{LeapTable: "/z", LeapTableEntries: 28}, "(28 entries, no expiry date in the file)"},
	} {
		var b strings.Builder
		printStatus(&b, &c.st)
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("status lacks %q:\n%s", c.want, b.String())
		}
	}
	var b strings.Builder
	printStatus(&b, &report.Status{})
	if strings.Contains(b.String(), "Leap table") {
		t.Error("a leap table line without a table")
	}
}
