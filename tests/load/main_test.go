package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func nowForTest() time.Time { return time.Now() }

func TestFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-mode spoof") {
		t.Fatalf("-h: exit %d, usage %q", code, errb.String())
	}
	bad := [][]string{
		{"-target", "192.0.2.1:123"},
		{"-mode", "nts"},
		{"-duration", "11m"},
		{"-duration", "0s"},
		{"-conns", "0"},
		{"-conns", "65"},
		{"-rate", "-1"},
		{"-mode", "spoof", "-sources", "0"},
		{"-mode", "spoof", "-sources", "16646144"},
		{"-rounds", "0"},
		{"-ring", "1000"},
		{"-grace", "1m"},
		{"extra"},
	}
	for _, args := range bad {
		errb.Reset()
		if code := run(args, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 with a message", args, code, errb.String())
		}
	}
	// All problems are reported at once.
	errb.Reset()
	run([]string{"-target", "192.0.2.1:123", "-conns", "0"}, &out, &errb)
	if !strings.Contains(errb.String(), "loopback") || !strings.Contains(errb.String(), "-conns") {
		t.Errorf("combined errors: %q", errb.String())
	}
	if _, err := parseFlags([]string{"-mode", "spoof", "-sources", "16646143", "-target", "127.0.0.1:9"}, &errb); err != nil {
		t.Errorf("the largest source count was refused: %v", err)
	}
}
