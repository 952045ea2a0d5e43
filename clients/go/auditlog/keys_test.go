package auditlog

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A reply with other statements than the log's, for the refusal cases.
type fixedSource struct{ reply *CheckpointReply }

func (f fixedSource) Checkpoint(uint64) (*CheckpointReply, error) { return f.reply, nil }

// Issue 25 §3: a writer that holds only the log's first key follows the statements that hand
// the key on (format-spec.md §8.8), keeps them beside its checkpoint, and refuses a log whose
// statements are forged or do not extend the ones it followed.
func TestAWriterFollowsTheLogsKeySuccessions(t *testing.T) {
	d := newDaemon(t)
	c, err := Dial(d.socket, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	appendN := func(n int, tag string) {
		for i := 0; i < n; i++ {
			if r := c.AppendMany([]any{event("acme", i, tag+strings.Repeat("x", i%3)+string(rune('a'+i%26)))}); r[0].Err != nil {
				t.Fatal(r[0].Err)
			}
		}
	}
	ctl := func(args ...string) string {
		out, err := exec.Command(filepath.Join(filepath.Dir(d.bin), "auditctl"), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("auditctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	data := filepath.Join(d.root, "data")
	first := strings.TrimSpace(ctl("key", data))
	key, err := ParseVerifierKey(first)
	if err != nil {
		t.Fatal(err)
	}
	appendN(5, "a")
	state := &CheckpointState{Path: filepath.Join(d.root, "writer.checkpoint"), Key: key}
	newestSize(t, c, key, 5)
	if _, err := state.Check(c); err != nil {
		t.Fatal(err)
	}
	origin := strings.SplitN(first, "+", 2)[0]
	var newKeys []string
	for i, name := range []string{"k2.key", "k3.key"} {
		path := filepath.Join(d.root, name)
		newKeys = append(newKeys, strings.TrimSpace(ctl("key", "generate", "--name", origin, "--out", path)))
		ctl("key", "rotate", data, "--new-key", path, "--grace", "0", "--socket", d.socket)
		appendN(5, name)
		next, _ := ParseVerifierKey(newKeys[i])
		// The checkpoint the writer gets is the newest key's alone once past the handover.
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, err := c.Checkpoint(0)
			if err == nil {
				if cp, err := next.open(r.Note); err == nil && cp.size >= uint64(11+6*i) {
					if _, err := key.open(r.Note); err == nil {
						t.Fatal("a checkpoint past the handover still carries the first key's signature")
					}
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("no checkpoint by the new key within 20 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := state.Check(c); err != nil {
			t.Fatalf("after rotation %d the writer holding the first key did not follow: %v", i+1, err)
		}
	}
	kept, err := os.ReadFile(state.Path + ".keys")
	if err != nil || !strings.Contains(string(kept), "auditlog key succession/1") {
		t.Fatalf("the statements were not kept beside the checkpoint: %v %s", err, kept)
	}
	r, err := c.Checkpoint(0)
	if err != nil || len(r.Successions) != 2 {
		t.Fatalf("the reply carries %d statements: %v", len(r.Successions), err)
	}
	// A statement signed by the new key alone (the second one rewritten to hand over to it
	// from the first key) is refused; so is a log that shows fewer statements than followed.
	forged := &CheckpointState{Path: filepath.Join(d.root, "fresh.checkpoint"), Key: key}
	lines := strings.SplitN(r.Successions[0], "\n\n", 2)
	sigs := strings.Split(strings.TrimSuffix(lines[1], "\n"), "\n")
	alone := lines[0] + "\n\n" + sigs[1] + "\n"
	if _, err := forged.Check(fixedSource{&CheckpointReply{Note: r.Note, Successions: []string{alone, r.Successions[1]}}}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a statement signed by the new key alone was not refused: %v", err)
	}
	if _, err := state.Check(fixedSource{&CheckpointReply{Note: r.Note, Successions: r.Successions[:1]}}); !errors.Is(err, ErrFork) {
		t.Fatalf("a log showing fewer key successions than followed was not refused: %v", err)
	}
}
