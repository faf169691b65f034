package control

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeRequest: whatever a local caller sends, DecodeRequest either refuses it
// with a coded *Error or returns a version-1 request with a command, which encodes
// and decodes back to itself.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"cmd":"status"}`,
		`{"v":1,"cmd":"clients","args":{"N":20}}`,
		`{"v":1,"cmd":"keys.sym.gen","args":{"ID":8,"Type":"AES256"}}`,
		`{"v":2,"cmd":"status"}`,
		`{"v":1}`,
		`{"v":1,"cmd":"x","extra":1}`,
		`{"v":1,"cmd":"a"} {}`,
		`[]`, `null`, ``, "\x00", `{"v":1,"cmd":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := DecodeRequest(line)
		if err != nil {
			ce, ok := err.(*Error)
			if !ok || ce.Code == "" || ce.Msg == "" {
				t.Fatalf("error %v is not a coded *Error", err)
			}
			return
		}
		if req.V != Version || req.Cmd == "" {
			t.Fatalf("accepted %+v", req)
		}
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeRequest(enc)
		if err != nil || again.V != req.V || again.Cmd != req.Cmd || !sameJSON(again.Args, req.Args) {
			t.Fatalf("round trip: %+v → %s → %+v, %v", req, enc, again, err)
		}
	})
}

// sameJSON compares by value: encoders may escape the same string differently.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
