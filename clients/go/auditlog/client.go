// Package auditlog appends entries to auditd's tamper-evident audit log over its Unix socket
// (format-spec.md §9.1). Standard library only.
//
//	c, err := auditlog.Dial("/run/auditd/auditd.sock", 30*time.Second)
//	ack, err := c.Append(map[string]any{"org": "acme", ...})   // returns once durable
//	results := c.AppendMany(entries)                         // pipelined
//
// RetryingClient reconnects after a lost connection and sends again what was not
// acknowledged: entries with an idempotency_key are then stored exactly once.
package auditlog

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

const (
	typeAppend = 0x01
	typePing   = 0x02
	typeAck    = 0x81
	typePong   = 0x82
	typeError  = 0x83
	headerSize = 4 + 1 + 8
	maxBody    = 64 << 10
)

// Ack says an entry is durable: its sequence number, its place in its org's chain, its hash.
type Ack struct {
	Seq       uint64
	OrgSeq    uint64
	Hash      string
	Duplicate bool
}

// Error is a refusal by the daemon. Code 1 (invalid entry) names the field: do not retry it
// unchanged. Code 4 (unavailable) is worth retrying.
type Error struct {
	Code    uint16
	Message string
}

var codeNames = map[uint16]string{1: "invalid entry", 2: "malformed frame", 3: "frame too large", 4: "unavailable", 5: "forbidden"}

func (e *Error) Error() string {
	name, ok := codeNames[e.Code]
	if !ok {
		name = fmt.Sprintf("error %d", e.Code)
	}
	return name + ": " + e.Message
}

// Retryable reports whether sending the entry again later may succeed.
func (e *Error) Retryable() bool { return e.Code == 4 }

// ErrConnectionLost means no acknowledgement came: with an idempotency_key, sending the
// entry again is safe.
var ErrConnectionLost = errors.New("auditlog: connection lost before an acknowledgement")

// Result is one entry's outcome in AppendMany: an Ack, or an error.
type Result struct {
	Ack        *Ack
	Err        error
	Checkpoint *CheckpointReply
}

// Client is one connection. Safe for use by several goroutines: requests are pipelined.
type Client struct {
	path    string
	timeout time.Duration
	conn    net.Conn
	mu      sync.Mutex // guards writes, next and pending
	next    uint64
	pending map[uint64]chan Result
	closed  chan struct{}
	err     error
}

// Dial connects to the socket at path. timeout bounds every wait for an acknowledgement.
func Dial(path string, timeout time.Duration) (*Client, error) {
	conn, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("auditlog: cannot connect to %s (is auditd running?): %w", path, err)
	}
	c := &Client{path: path, timeout: timeout, conn: conn, pending: map[uint64]chan Result{}, closed: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Close closes the connection; waiting appends get ErrConnectionLost.
func (c *Client) Close() error { return c.conn.Close() }

func encode(entry any) ([]byte, error) {
	var body []byte
	switch e := entry.(type) {
	case []byte:
		body = e
	case string:
		body = []byte(e)
	default:
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("auditlog: entry is not JSON: %w", err)
		}
		body = b
	}
	if len(body) > maxBody {
		return nil, &Error{Code: 3, Message: fmt.Sprintf("the entry is %d bytes; at most %d are accepted", len(body), maxBody)}
	}
	return body, nil
}

func frame(t byte, id uint64, body []byte) []byte {
	b := make([]byte, headerSize+len(body))
	binary.LittleEndian.PutUint32(b, uint32(1+8+len(body)))
	b[4] = t
	binary.LittleEndian.PutUint64(b[5:], id)
	copy(b[headerSize:], body)
	return b
}

// Append sends one entry and waits until it is durable.
func (c *Client) Append(entry any) (*Ack, error) {
	r := c.AppendMany([]any{entry})[0]
	return r.Ack, r.Err
}

// AppendMany sends every entry at once (pipelined) and returns each one's Result, in order.
func (c *Client) AppendMany(entries []any) []Result {
	out := make([]Result, len(entries))
	chans := make([]chan Result, len(entries))
	var buf []byte
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		for i := range out {
			out[i] = Result{Err: ErrConnectionLost}
		}
		return out
	}
	for i, e := range entries {
		body, err := encode(e)
		if err != nil {
			out[i] = Result{Err: err}
			continue
		}
		c.next++
		ch := make(chan Result, 1)
		c.pending[c.next] = ch
		chans[i] = ch
		buf = append(buf, frame(typeAppend, c.next, body)...)
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, werr := c.conn.Write(buf)
	c.mu.Unlock()
	if werr != nil {
		c.conn.Close()
	}
	deadline := time.NewTimer(c.timeout)
	defer deadline.Stop()
	for i, ch := range chans {
		if ch == nil {
			continue
		}
		select {
		case r := <-ch:
			out[i] = r
		case <-deadline.C:
			out[i] = Result{Err: fmt.Errorf("%w: no answer within %s", ErrConnectionLost, c.timeout)}
			c.conn.Close()
		}
	}
	return out
}

func (c *Client) readLoop() {
	r := bufio.NewReaderSize(c.conn, 1<<16)
	head := make([]byte, headerSize)
	var err error
	for {
		if _, err = io.ReadFull(r, head); err != nil {
			break
		}
		n := binary.LittleEndian.Uint32(head)
		if n < 9 || n > 16<<20 {
			err = fmt.Errorf("malformed frame length %d", n)
			break
		}
		body := make([]byte, n-9)
		if _, err = io.ReadFull(r, body); err != nil {
			break
		}
		id := binary.LittleEndian.Uint64(head[5:])
		res := decodeReply(head[4], body)
		c.mu.Lock()
		ch := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- res
		}
	}
	c.mu.Lock()
	c.err = err
	for id, ch := range c.pending {
		ch <- Result{Err: ErrConnectionLost}
		delete(c.pending, id)
	}
	c.mu.Unlock()
	close(c.closed)
}

// decodeReply turns a reply frame's type and body into the caller's result.
func decodeReply(t byte, body []byte) Result {
	switch t {
	case typeAck:
		if len(body) != 49 {
			return Result{Err: &Error{Code: 2, Message: "short ACK"}}
		}
		return Result{Ack: &Ack{Seq: binary.LittleEndian.Uint64(body), OrgSeq: binary.LittleEndian.Uint64(body[8:]),
			Hash: hex.EncodeToString(body[16:48]), Duplicate: body[48]&1 == 1}}
	case typeError:
		if len(body) < 2 {
			return Result{Err: &Error{Code: 2, Message: "short ERROR"}}
		}
		return Result{Err: &Error{Code: binary.LittleEndian.Uint16(body), Message: string(body[2:])}}
	case typePong:
		return Result{}
	case typeCheckpointReply:
		return decodeCheckpointReply(body)
	default:
		return Result{Err: &Error{Code: 2, Message: fmt.Sprintf("unexpected frame type 0x%02x", t)}}
	}
}

// request sends one frame of type t and waits for its answer.
func (c *Client) request(t byte, body []byte) Result {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return Result{Err: ErrConnectionLost}
	}
	c.next++
	ch := make(chan Result, 1)
	c.pending[c.next] = ch
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, werr := c.conn.Write(frame(t, c.next, body))
	c.mu.Unlock()
	if werr != nil {
		c.conn.Close()
	}
	deadline := time.NewTimer(c.timeout)
	defer deadline.Stop()
	select {
	case r := <-ch:
		return r
	case <-deadline.C:
		c.conn.Close()
		return Result{Err: fmt.Errorf("%w: no answer within %s", ErrConnectionLost, c.timeout)}
	}
}

// RetryingClient reconnects after a lost connection or a daemon restart and sends again the
// entries not yet acknowledged, up to Retries times with a doubling Backoff.
type RetryingClient struct {
	Path       string
	Timeout    time.Duration
	Retries    int
	Backoff    time.Duration
	Reconnects int
	client     *Client
}

// AppendMany appends with retries; entries refused for good keep their *Error.
func (rc *RetryingClient) AppendMany(entries []any) []Result {
	out := make([]Result, len(entries))
	done := make([]bool, len(entries))
	delay := rc.Backoff
	for attempt := 0; attempt <= rc.Retries; attempt++ {
		var todo []int
		for i := range entries {
			if !done[i] {
				todo = append(todo, i)
			}
		}
		if len(todo) == 0 {
			break
		}
		if rc.client == nil {
			c, err := Dial(rc.Path, rc.Timeout)
			if err != nil {
				for _, i := range todo {
					out[i] = Result{Err: err}
				}
				rc.Reconnects++
				time.Sleep(delay)
				delay = minDuration(delay*2, 5*time.Second)
				continue
			}
			rc.client = c
		}
		batch := make([]any, len(todo))
		for k, i := range todo {
			batch[k] = entries[i]
		}
		lost := false
		for k, r := range rc.client.AppendMany(batch) {
			i := todo[k]
			out[i] = r
			var ae *Error
			switch {
			case r.Err == nil:
				done[i] = true
			case errors.Is(r.Err, ErrConnectionLost):
				lost = true
			case errors.As(r.Err, &ae) && ae.Retryable():
			default:
				done[i] = true
			}
		}
		if lost {
			rc.client.Close()
			rc.client = nil
			rc.Reconnects++
		}
		if !lost && allDone(done) {
			break
		}
		time.Sleep(delay)
		delay = minDuration(delay*2, 5*time.Second)
	}
	return out
}

// Close closes the current connection.
func (rc *RetryingClient) Close() {
	if rc.client != nil {
		rc.client.Close()
		rc.client = nil
	}
}

func allDone(d []bool) bool {
	for _, v := range d {
		if !v {
			return false
		}
	}
	return true
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
