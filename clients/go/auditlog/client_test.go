package auditlog

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon runs the real auditd (AUDITD_BIN) in a temporary directory.
type daemon struct {
	bin, root, socket string
	port              int // the read port; 0: any free port, not used
	cmd               *exec.Cmd
}

func newDaemon(t *testing.T) *daemon {
	bin := os.Getenv("AUDITD_BIN")
	if bin == "" {
		t.Fatal("set AUDITD_BIN to the auditd binary (swift build --product auditd)")
	}
	root := t.TempDir()
	d := &daemon{bin: bin, root: root, socket: filepath.Join(root, "auditd.sock")}
	d.start(t)
	t.Cleanup(func() {
		if d.cmd != nil {
			_ = d.cmd.Process.Kill()
			_, _ = d.cmd.Process.Wait()
		}
	})
	return d
}

func (d *daemon) start(t *testing.T) {
	if err := d.startErr(); err != nil {
		t.Fatal(err)
	}
}

// startErr starts auditd and waits for its socket (callable from any goroutine).
func (d *daemon) startErr() error {
	d.cmd = exec.Command(d.bin, "--data", filepath.Join(d.root, "data"), "--socket", d.socket, "--http-port", fmt.Sprint(d.port), "--log-level", "warning")
	if err := d.cmd.Start(); err != nil {
		return err
	}
	for i := 0; i < 600; i++ {
		if c, err := net.Dial("unix", d.socket); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("auditd did not come up")
}

func (d *daemon) stop(t *testing.T) {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	_, _ = d.cmd.Process.Wait()
	d.cmd = nil
}

func event(org string, i int, key string) map[string]any {
	e := map[string]any{"org": org, "category": "access", "action": "access.granted",
		"actor": map[string]any{"type": "service", "id": "go-client"}, "target": map[string]any{"type": "doc", "id": fmt.Sprintf("d%d", i)},
		"outcome": "success", "source": map[string]any{"service": "go-tests"}, "occurred_at": "2026-01-01T00:00:00Z"}
	if key != "" {
		e["idempotency_key"] = key
	}
	return e
}

func TestAppendPipelinedAndRefusals(t *testing.T) {
	d := newDaemon(t)
	c, err := Dial(d.socket, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, err := c.Append(event("org_go", 0, ""))
	if err != nil || first.OrgSeq != 0 || len(first.Hash) != 64 {
		t.Fatalf("first append: %+v %v", first, err)
	}
	entries := make([]any, 500)
	for i := range entries {
		entries[i] = event("org_go", i+1, "")
	}
	res := c.AppendMany(entries)
	last := first.Seq
	for i, r := range res {
		if r.Err != nil || r.Ack.Seq <= last || r.Ack.OrgSeq != uint64(i+1) {
			t.Fatalf("entry %d: %+v %v", i, r.Ack, r.Err)
		}
		last = r.Ack.Seq
	}
	bad := event("org_go", 9, "")
	bad["category"] = "nonsense"
	_, err = c.Append(bad)
	ae, ok := err.(*Error)
	if !ok || ae.Code != 1 || !strings.Contains(ae.Message, "category") {
		t.Fatalf("an invalid entry is refused naming the field: %v", err)
	}
	if a, err := c.Append(event("org_go", 502, "")); err != nil || a.Seq <= last {
		t.Fatalf("the connection stays usable after a refusal: %+v %v", a, err)
	}
}

func TestConcurrentGoroutinesShareOneConnection(t *testing.T) {
	d := newDaemon(t)
	c, err := Dial(d.socket, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seqs := make(chan uint64, 200)
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		go func(i int) {
			a, err := c.Append(event("org_many", i, ""))
			if err != nil {
				errs <- err
				return
			}
			seqs <- a.Seq
		}(i)
	}
	seen := map[uint64]bool{}
	for i := 0; i < 200; i++ {
		select {
		case s := <-seqs:
			seen[s] = true
		case err := <-errs:
			t.Fatal(err)
		}
	}
	if len(seen) != 200 {
		t.Fatalf("%d distinct seqs for 200 appends", len(seen))
	}
}

func TestRetryAcrossARestartStoresEachKeyedEntryOnce(t *testing.T) {
	d := newDaemon(t)
	rc := &RetryingClient{Path: d.socket, Timeout: 10 * time.Second, Retries: 40, Backoff: 50 * time.Millisecond}
	defer rc.Close()
	batch := make([]any, 50)
	for i := range batch {
		batch[i] = event("org_retry", i, fmt.Sprintf("k-%d", i))
	}
	first := rc.AppendMany(batch[:25])
	for _, r := range first {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	d.stop(t)
	restarted := make(chan error, 1)
	go func() { time.Sleep(700 * time.Millisecond); restarted <- d.startErr() }()
	rest := rc.AppendMany(batch)
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if rc.Reconnects == 0 {
		t.Fatal("the client should have had to reconnect")
	}
	orgSeqs := map[uint64]bool{}
	for i, r := range rest {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", i, r.Err)
		}
		if i < 25 && (!r.Ack.Duplicate || r.Ack.Seq != first[i].Ack.Seq) {
			t.Fatalf("entry %d was stored before the restart: expected a duplicate at seq %d, got %+v", i, first[i].Ack.Seq, r.Ack)
		}
		if i >= 25 && r.Ack.Duplicate {
			t.Fatalf("entry %d is new", i)
		}
		orgSeqs[r.Ack.OrgSeq] = true
	}
	if len(orgSeqs) != 50 {
		t.Fatalf("each keyed entry stored once: %d distinct org positions", len(orgSeqs))
	}
}

func TestClearErrorWhenTheDaemonIsNotThere(t *testing.T) {
	_, err := Dial(filepath.Join(t.TempDir(), "none.sock"), time.Second)
	if err == nil || !strings.Contains(err.Error(), "is auditd running?") {
		t.Fatalf("got %v", err)
	}
}

// copyTree copies the directory from into to (files and folders; the socket is skipped).
func copyTree(t *testing.T, from, to string) {
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		switch {
		case info.IsDir():
			return os.MkdirAll(dst, 0o700)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, data, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// newestSize waits until the daemon's newest checkpoint holds at least n entries.
func newestSize(t *testing.T, c CheckpointSource, key *VerifierKey, n uint64) uint64 {
	for i := 0; i < 200; i++ {
		if r, err := c.Checkpoint(0); err == nil {
			if cp, err := key.open(r.Note); err == nil && cp.size >= n {
				return cp.size
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no checkpoint of %d entries within 20 s", n)
	return 0
}

// Issue 23 §1: a writer keeping the newest checkpoint it verified accepts a log that grew and
// refuses one rolled back (its earlier data and key restored) or forked (that copy grown to
// the same size with other entries), leaving its file as it was.
func TestAKeptCheckpointCatchesARollbackAndAFork(t *testing.T) {
	d := newDaemon(t)
	c, err := Dial(d.socket, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	entries := func(n int, tag string) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = event("acme", i, tag+fmt.Sprint(i))
		}
		return out
	}
	for _, r := range c.AppendMany(entries(20, "first")) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	out, err := exec.Command(filepath.Join(filepath.Dir(d.bin), "auditctl"), "key", filepath.Join(d.root, "data")).Output()
	if err != nil {
		t.Fatal("auditctl key (beside AUDITD_BIN): ", err)
	}
	key, err := ParseVerifierKey(string(out))
	if err != nil {
		t.Fatal(err)
	}
	first := newestSize(t, c, key, 20)
	state := &CheckpointState{Path: filepath.Join(d.root, "writer.checkpoint"), Key: key}
	if n, err := state.Check(c); err != nil || n != first {
		t.Fatalf("first check: %d, %v", n, err)
	}
	// The log as it was: its data and key, copied while it is stopped.
	c.Close()
	d.stop(t)
	early := &daemon{bin: d.bin, root: t.TempDir()}
	early.socket = filepath.Join(early.root, "auditd.sock")
	copyTree(t, filepath.Join(d.root, "data"), filepath.Join(early.root, "data"))
	copyTree(t, filepath.Join(d.root, "auditd-keys"), filepath.Join(early.root, "auditd-keys"))
	d.start(t)
	c, _ = Dial(d.socket, 10*time.Second)
	for _, r := range c.AppendMany(entries(15, "second")) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	grown := newestSize(t, c, key, first+15)
	if n, err := state.Check(c); err != nil || n != grown {
		t.Fatalf("a log that grew: %d, %v", n, err)
	}
	kept, _ := os.ReadFile(state.Path)
	c.Close()
	d.stop(t)

	// Rolled back: the earlier copy answers on another socket.
	early.start(t)
	t.Cleanup(func() {
		if early.cmd != nil {
			_ = early.cmd.Process.Kill()
			_, _ = early.cmd.Process.Wait()
		}
	})
	e, err := Dial(early.socket, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.Check(e); !errors.Is(err, ErrRollback) {
		t.Fatalf("a rolled-back log was not refused as a rollback: %v", err)
	}
	// Forked: that copy grown to the same size with other entries.
	now := newestSize(t, e, key, 0)
	for _, r := range e.AppendMany(entries(int(grown-now), "forked")) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if n := newestSize(t, e, key, grown); n != grown {
		t.Fatalf("the fork has %d entries, not %d", n, grown)
	}
	if _, err := state.Check(e); !errors.Is(err, ErrFork) {
		t.Fatalf("a forked log was not refused as a fork: %v", err)
	}
	if after, _ := os.ReadFile(state.Path); string(after) != string(kept) {
		t.Fatal("the kept checkpoint changed after a refusal")
	}
	e.Close()
}

// Consistent over proofs the real log gives, and with one bit changed.
func TestConsistencyProofsOfTheRealLog(t *testing.T) {
	d := newDaemon(t)
	c, err := Dial(d.socket, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := exec.Command(filepath.Join(filepath.Dir(d.bin), "auditctl"), "key", filepath.Join(d.root, "data")).Output()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseVerifierKey(string(out))
	if err != nil {
		t.Fatal(err)
	}
	var sizes []uint64
	for round := 0; round < 6; round++ {
		var batch []any
		for i := 0; i < 1+round*7; i++ {
			batch = append(batch, event("acme", i, ""))
		}
		for _, r := range c.AppendMany(batch) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		want := uint64(0)
		if len(sizes) > 0 {
			want = sizes[len(sizes)-1]
		}
		sizes = append(sizes, newestSize(t, c, key, want+uint64(len(batch))))
	}
	newest := sizes[len(sizes)-1]
	r, err := c.Checkpoint(0)
	if err != nil {
		t.Fatal(err)
	}
	head, _ := key.open(r.Note)
	checked := 0
	for _, old := range sizes[:len(sizes)-1] {
		rp, err := c.Checkpoint(old)
		if err != nil {
			t.Fatal(err)
		}
		to, _ := key.open(rp.Note)
		if to.size != newest {
			continue // a newer checkpoint came meanwhile: its proof is for that one
		}
		// The old root, from the log's own checkpoint at that size (auditctl prove consistency).
		cmd := exec.Command(filepath.Join(filepath.Dir(d.bin), "auditctl"), "prove", "consistency", filepath.Join(d.root, "data"), "--old", fmt.Sprint(old), "--new", fmt.Sprint(newest))
		text, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			OldRoot string `json:"old_root"`
		}
		if err := json.Unmarshal(text, &p); err != nil {
			t.Fatal(err)
		}
		oldRoot, _ := hex.DecodeString(p.OldRoot)
		if !Consistent(old, newest, oldRoot, head.root, rp.Proof) {
			t.Fatalf("a genuine proof from %d to %d does not verify", old, newest)
		}
		checked++
		if len(rp.Proof) > 0 {
			bent := make([][]byte, len(rp.Proof))
			for i := range bent {
				bent[i] = append([]byte(nil), rp.Proof[i]...)
			}
			bent[0][3] ^= 1
			if Consistent(old, newest, oldRoot, head.root, bent) {
				t.Fatalf("a proof with a bit changed verifies from %d", old)
			}
		}
	}
	if checked < 3 {
		t.Fatalf("only %d of %d sizes were checked", checked, len(sizes)-1)
	}
}
