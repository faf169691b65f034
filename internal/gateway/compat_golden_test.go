package gateway

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"timegate/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden warning files in testdata/compat")

// The configuration corpus (Debian's and Fedora's default chrony.conf and
// ntp.conf, NTPsec's examples, the seed's lines, a site's chrony lines; see
// testdata/compat/README.md) loads without an error, and the warnings
// -check-config prints are the golden ones: every line without effect here,
// and why the configuration can never synchronise. Files the configurations
// name (keys, leap files) are not checked here: they depend on the machine.
func TestCompatCorpus(t *testing.T) {
	files, _ := filepath.Glob("testdata/compat/*.conf")
	more, _ := filepath.Glob("testdata/compat/ntpsec/*.conf")
	files = append(files, more...)
	if len(files) < 8 {
		t.Fatalf("corpus has %d files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, w := range cfg.Warnings {
				b.WriteString("warning: " + w.String() + "\n")
			}
			for _, w := range syncWarnings(cfg, nil) {
				b.WriteString("warning: " + w + "\n")
			}
			golden := strings.TrimSuffix(f, ".conf") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("warnings differ from %s:\ngot:\n%s\nwant:\n%s", golden, b.String(), want)
			}
		})
	}
}

// A configuration that can synchronise gets no such warning; the reasons
// one cannot are each named with their fix.
func TestSyncWarnings(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"server a nts\nserver b nts\nserver c nts\n", nil},
		{"local stratum 10\n", nil},
		{"pool p nts\n", nil},
		{"pool p nts maxsources 2\n", []string{"only 2 usable source(s), fewer than minsources 3", "`minsources 2`"}},
		{"server a\nminsources 1\n", []string{"authselectmode require never selects the 1 unauthenticated", "t.conf:2: no usable source"}},
		{"server a\nauthselectmode mix\nminsources 1\n", nil},
		{"server a key 4\nminsources 1\n", []string{"name a key that is not in the keys file"}},
		{"port 123\n", []string{"no server, pool or local line"}},
		{"server a nts\nlocal stratum 9\n", []string{"serves its local clock at stratum 9"}},
	} {
		cfg, err := config.Parse("t.conf", []byte(tc.text))
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(syncWarnings(cfg, nil), "\n")
		if tc.want == nil && got != "" {
			t.Errorf("%q: unexpected warnings:\n%s", tc.text, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%q: missing %q in:\n%s", tc.text, w, got)
			}
		}
	}
}

// trustedkey keeps only the listed keys: the others authenticate nothing.
func TestTrustedKeys(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	os.WriteFile(keys, []byte("1 AES128 HEX:00112233445566778899aabbccddeeff\n2 AES128 HEX:00112233445566778899aabbccddeeff\n"), 0o600)
	cfg, err := config.Parse("t.conf", []byte("keys "+keys+"\ntrustedkey 2 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	set, warnings, err := loadKeys(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Lookup(1); ok || set.Len() != 1 {
		t.Errorf("untrusted key 1 kept: %d keys", set.Len())
	}
	w := strings.Join(warnings, "\n")
	if !strings.Contains(w, "not listed by trustedkey, so authenticating nothing: key(s) 1") || !strings.Contains(w, "trustedkey 3: no such key") {
		t.Errorf("warnings:\n%s", w)
	}
}
