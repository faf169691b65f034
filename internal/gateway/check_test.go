package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckSampleConfig(t *testing.T) {
	if err := Check("../../timegate.conf.example"); err != nil {
		t.Fatal(err)
	}
}

func TestCheckReportsEverythingWithPositions(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	os.WriteFile(keys, []byte("1 AES128 HEX:00112233445566778899aabbccddeeff\n"), 0o644)
	conf := filepath.Join(dir, "t.conf")
	text := "port 1123\nkeyfile " + keys + "\nrestrict 192.0.2.0 mask 255.0.255.0\nrestrict default frobnicate\n" +
		"ntsservercert " + filepath.Join(dir, "missing.pem") + "\nntsserverkey " + filepath.Join(dir, "missing.key") + "\n" +
		"ntstrustedcerts " + filepath.Join(dir, "noca.pem") + "\n"
	os.WriteFile(conf, []byte(text), 0o644)
	err := Check(conf)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"t.conf:2: keyfile", "t.conf:3: restrict", "t.conf:4: restrict", "frobnicate", "t.conf:5: ntsservercert", "t.conf:7: ", "noca.pem"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestCheckAuditShipFiles(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "t.conf")
	os.WriteFile(conf, []byte("port 11123\nntsport 0\nauditlog "+dir+"/a.log\nauditship tls://127.0.0.1:6514 ca "+dir+"/missing.pem\n"), 0o644)
	err := Check(conf)
	if err == nil || !strings.Contains(err.Error(), "t.conf:4: auditship:") {
		t.Fatalf("%v", err)
	}
}
