package auditlog

import (
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
	d.cmd = exec.Command(d.bin, "--data", filepath.Join(d.root, "data"), "--socket", d.socket, "--http-port", "0", "--log-level", "warning")
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
