package auditlog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func follow(t *testing.T, p *ReadPort, opt FollowOptions) ([]FeedLine, error) {
	var got []FeedLine
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := p.Follow(ctx, "acme", opt, func(l FeedLine) error {
		got = append(got, l)
		return nil
	})
	return got, err
}

// Issue 23 §1 for feed consumers: a forwarder keeping the newest checkpoint it verified follows
// the real daemon's feed across a restart, and stops before forwarding anything from a
// rolled-back or forked copy of the log; a feed that leaves an entry out stops it too.
func TestAFeedConsumerCatchesARollbackAForkAndAGap(t *testing.T) {
	bin := os.Getenv("AUDITD_BIN")
	if bin == "" {
		t.Fatal("set AUDITD_BIN to the auditd binary (swift build --product auditd)")
	}
	d := &daemon{bin: bin, root: t.TempDir(), port: freePort(t)}
	d.socket = filepath.Join(d.root, "auditd.sock")
	early := &daemon{bin: bin, root: t.TempDir(), port: freePort(t)}
	early.socket = filepath.Join(early.root, "auditd.sock")
	for _, x := range []*daemon{d, early} {
		x := x
		t.Cleanup(func() {
			if x.cmd != nil {
				_ = x.cmd.Process.Kill()
				_, _ = x.cmd.Process.Wait()
			}
		})
	}
	d.start(t)
	appendAll := func(socket string, n int, tag string) {
		c, err := Dial(socket, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		entries := make([]any, n)
		for i := range entries {
			entries[i] = event("acme", i, tag+fmt.Sprint(i))
		}
		for _, r := range c.AppendMany(entries) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	appendAll(d.socket, 20, "first")
	auditctl := filepath.Join(filepath.Dir(bin), "auditctl")
	data := filepath.Join(d.root, "data")
	out, err := exec.Command(auditctl, "token", "create", data, "--org", "acme", "--socket", d.socket).Output()
	if err != nil {
		t.Fatal("auditctl token create: ", err)
	}
	token := strings.TrimSpace(string(out))
	out, err = exec.Command(auditctl, "key", data).Output()
	if err != nil {
		t.Fatal("auditctl key: ", err)
	}
	key, err := ParseVerifierKey(string(out))
	if err != nil {
		t.Fatal(err)
	}
	port := NewReadPort(fmt.Sprintf("http://127.0.0.1:%d", d.port), token, 10*time.Second)
	newestSize(t, port, key, 21)
	state := &CheckpointState{Path: filepath.Join(d.root, "forwarder.checkpoint"), Key: key}
	got, err := follow(t, port, FollowOptions{State: state, Limit: 21})
	if err != nil || len(got) != 21 || got[0].OrgSeq != 0 || got[20].OrgSeq != 20 {
		t.Fatalf("the first 21 entries: %d lines, %v", len(got), err)
	}
	last := got[20]

	// The log as it was, copied while stopped; the real one grows.
	d.stop(t)
	copyTree(t, filepath.Join(d.root, "data"), filepath.Join(early.root, "data"))
	copyTree(t, filepath.Join(d.root, "auditd-keys"), filepath.Join(early.root, "auditd-keys"))
	d.start(t)
	appendAll(d.socket, 15, "second")
	newestSize(t, port, key, 36)
	more, err := follow(t, port, FollowOptions{Cursor: &last.Seq, OrgSeq: &last.OrgSeq, State: state, Limit: 15})
	if err != nil || len(more) != 15 || more[0].OrgSeq != 21 || more[14].OrgSeq != 35 {
		t.Fatalf("the 15 after a restart: %d lines, %v", len(more), err)
	}
	kept, _ := os.ReadFile(state.Path)
	d.stop(t)

	// Rolled back: nothing is forwarded.
	early.start(t)
	old := NewReadPort(fmt.Sprintf("http://127.0.0.1:%d", early.port), token, 10*time.Second)
	newestSize(t, old, key, 21)
	if got, err := follow(t, old, FollowOptions{Cursor: &last.Seq, State: state}); !errors.Is(err, ErrRollback) || len(got) != 0 {
		t.Fatalf("a rolled-back log: %d lines forwarded, %v", len(got), err)
	}
	// Forked: that copy grown to the same size with other entries.
	appendAll(early.socket, 15, "forked")
	newestSize(t, old, key, 36)
	if got, err := follow(t, old, FollowOptions{Cursor: &last.Seq, State: state}); !errors.Is(err, ErrFork) || len(got) != 0 {
		t.Fatalf("a forked log: %d lines forwarded, %v", len(got), err)
	}
	if after, _ := os.ReadFile(state.Path); string(after) != string(kept) {
		t.Fatal("the kept checkpoint changed after a refusal")
	}

	// A feed that leaves the org's entry 2 out.
	gap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for _, l := range [][2]int{{3, 0}, {5, 1}, {9, 3}} {
			fmt.Fprintf(w, "{\"seq\":%d,\"org_seq\":%d,\"hash\":\"%s\",\"entry\":{}}\n", l[0], l[1], strings.Repeat("00", 32))
		}
	}))
	defer gap.Close()
	seen, err := follow(t, NewReadPort(gap.URL, "aud_x_y", 10*time.Second), FollowOptions{})
	if !errors.Is(err, ErrGap) || len(seen) != 2 || !strings.Contains(err.Error(), "left out an entry") {
		t.Fatalf("a feed with a gap: %d lines, %v", len(seen), err)
	}
}
