package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"timegate/internal/config"
)

// Issue 11 option: `keytypes cmac` refuses a keys file with MD5 or SHA-1
// keys (start-up fails, a reload is refused), naming each and the fix;
// AES-CMAC keys load; without the directive every type loads.
func TestKeyTypesCMACRefusesLegacy(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	write := func(text string) {
		if err := os.WriteFile(keys, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	load := func(conf string) error {
		cfg, err := config.Parse("t.conf", []byte("keyfile "+keys+"\n"+conf))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = loadKeys(cfg)
		return err
	}
	write("1 AES128 HEX:00112233445566778899AABBCCDDEEFF\n2 MD5 HEX:00112233445566778899AABBCCDDEEFF\n3 SHA1 HEX:00112233445566778899AABBCCDDEEFF00112233\n")
	err := load("keytypes cmac\n")
	if !errors.Is(err, config.ErrConfig) || !strings.Contains(err.Error(), "key 2 (MD5), key 3 (SHA1)") {
		t.Fatalf("legacy keys under keytypes cmac: %v", err)
	}
	if err := load(""); err != nil {
		t.Fatalf("keytypes any (default): %v", err)
	}
	write("1 AES128 HEX:00112233445566778899AABBCCDDEEFF\n4 AES256 HEX:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF\n")
	if err := load("keytypes cmac\n"); err != nil {
		t.Fatalf("AES-CMAC keys only: %v", err)
	}
}
