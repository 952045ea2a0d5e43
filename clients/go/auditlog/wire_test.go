package auditlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wireVectors reads the wire-vector lines of format-spec.md §9.1: name to bytes.
func wireVectors(t *testing.T) map[string][]byte {
	text, err := os.ReadFile(filepath.Join("..", "..", "..", "format-spec.md"))
	if err != nil {
		t.Fatalf("format-spec.md (the wire vectors) cannot be read: %v", err)
	}
	out := map[string][]byte{}
	for _, line := range strings.Split(string(text), "\n") {
		if !strings.HasPrefix(line, "wire-vector ") {
			continue
		}
		name := strings.Fields(line)[1]
		i := strings.LastIndex(line, ": ")
		b, err := hex.DecodeString(strings.ReplaceAll(line[i+2:], " ", ""))
		if err != nil {
			t.Fatalf("wire-vector %s: %v", name, err)
		}
		out[name] = b
	}
	return out
}

func TestTheSpecsWireVectors(t *testing.T) {
	v := wireVectors(t)
	for _, name := range []string{"APPEND", "PING", "ACK", "ERROR"} {
		if v[name] == nil {
			t.Fatalf("format-spec.md has no wire-vector %s", name)
		}
	}
	if got := frame(typeAppend, 1, []byte("{}")); !bytes.Equal(got, v["APPEND"]) {
		t.Errorf("APPEND encodes to %x, the spec says %x", got, v["APPEND"])
	}
	if got := frame(typePing, 4, nil); !bytes.Equal(got, v["PING"]) {
		t.Errorf("PING encodes to %x, the spec says %x", got, v["PING"])
	}
	ack := v["ACK"]
	if binary.LittleEndian.Uint32(ack) != uint32(len(ack)-4) || binary.LittleEndian.Uint64(ack[5:]) != 2 {
		t.Fatalf("ACK vector's header is not length and id 2")
	}
	r := decodeReply(ack[4], ack[headerSize:])
	want := "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	if r.Ack == nil || r.Ack.Seq != 5 || r.Ack.OrgSeq != 3 || r.Ack.Hash != want || r.Ack.Duplicate {
		t.Errorf("ACK decodes to %+v", r)
	}
	e := v["ERROR"]
	r = decodeReply(e[4], e[headerSize:])
	var ae *Error
	if r.Err == nil || !asError(r.Err, &ae) || ae.Code != 1 || ae.Message != "field 'org': is required" {
		t.Errorf("ERROR decodes to %+v", r)
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}
