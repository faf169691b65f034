package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"timegate/audit"
)

// FuzzReadTail: whatever a crash, a disk error or an attacker leaves in
// the audit file, resuming never panics, and when it accepts the file the
// part it keeps is whole lines ending in a valid record, and the part it
// cuts is exactly the bytes after the last newline.
func FuzzReadTail(f *testing.F) {
	var good bytes.Buffer
	var c audit.Chain
	for i := range 3 {
		good.Write(c.Append(ev(i), time.Unix(1800000000, 0)))
		good.WriteByte('\n')
	}
	f.Add(good.Bytes())
	f.Add(append(bytes.Clone(good.Bytes()), `{"v":1,"se`...))
	f.Add([]byte("garbage\n"))
	f.Add([]byte{0, 0, 0})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "audit.log")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		st, err := readTail(fh)
		if err != nil {
			return
		}
		if st.size+int64(len(st.torn)) != int64(len(data)) || bytes.IndexByte(st.torn, '\n') >= 0 {
			t.Fatalf("kept %d, cut %d of %d", st.size, len(st.torn), len(data))
		}
		if st.size > 0 && data[st.size-1] != '\n' {
			t.Fatal("kept part does not end a line")
		}
		if st.size > 0 && st.chain.Seq == 0 {
			t.Fatal("accepted lines without a record")
		}
	})
}
