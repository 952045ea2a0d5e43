package auditlog

// A feed consumer a witness too (format-spec.md §9.2): Follow reads an org's feed on auditd's
// read port, as a SIEM forwarder does. With a CheckpointState it checks, before the first entry
// and every CheckEvery, that the read port's newest checkpoint extends the one kept (the RFC
// 9162 consistency proof, checked here); and each line's org_seq must follow the last. A
// rollback, a fork or a left-out entry stops the stream with ErrRollback, ErrFork or ErrGap.

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxFeedLine bounds one feed line (entries are at most 64 KiB) and any other answer read.
const maxFeedLine = 1 << 20

// ErrGap: the feed skipped one of the org's entries, or repeated one.
var ErrGap = errors.New("GAP")

// CheckpointSource answers with the newest checkpoint and the consistency proof from size old:
// the ingest socket (*Client) and the read port (*ReadPort) both do.
type CheckpointSource interface {
	Checkpoint(old uint64) (*CheckpointReply, error)
}

// ReadPort is auditd's read port at Base (http://host:port), read with a bearer token.
type ReadPort struct {
	Base, Token string
	HTTP        *http.Client
}

// NewReadPort is a read port client whose requests give up after timeout (the feed's stream
// is bounded by its heartbeats instead).
func NewReadPort(base, token string, timeout time.Duration) *ReadPort {
	return &ReadPort{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: timeout}}
}

func (p *ReadPort) open(ctx context.Context, client *http.Client, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	r, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if r.StatusCode != http.StatusOK {
		defer r.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		// 404 on /v1/checkpoint means none is published: the socket's code for it.
		var code uint16 = 5
		if r.StatusCode == http.StatusNotFound {
			code = 4
		}
		return nil, &Error{Code: code, Message: fmt.Sprintf("%s: HTTP %d: %s", path, r.StatusCode, msg)}
	}
	return r, nil
}

func (p *ReadPort) get(path string) ([]byte, error) {
	r, err := p.open(context.Background(), p.HTTP, path)
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	return io.ReadAll(io.LimitReader(r.Body, maxFeedLine))
}

// Checkpoint is the read port's newest checkpoint and the consistency proof to it from size
// old, as the socket's CHECKPOINT gives them, so CheckpointState.Check takes either.
func (p *ReadPort) Checkpoint(old uint64) (*CheckpointReply, error) {
	note, err := p.get("/v1/checkpoint")
	if err != nil {
		return nil, err
	}
	lines := strings.SplitN(string(note), "\n", 3)
	if len(lines) < 3 {
		return nil, &Error{Code: 2, Message: "the read port's checkpoint is not a checkpoint note"}
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return nil, &Error{Code: 2, Message: "the read port's checkpoint has no size"}
	}
	reply := &CheckpointReply{Note: string(note)}
	keys, err := p.get("/v1/key-successions")
	if err != nil {
		return nil, err
	}
	var ks struct {
		Successions []string `json:"key_successions"`
	}
	if err := json.Unmarshal(keys, &ks); err != nil {
		return nil, &Error{Code: 2, Message: "the read port's key successions are not JSON"}
	}
	reply.Successions = ks.Successions
	if old == 0 || size <= old {
		return reply, nil
	}
	body, err := p.get(fmt.Sprintf("/v1/proofs/consistency?old=%d&new=%d", old, size))
	if err != nil {
		return nil, err
	}
	var proof struct {
		Proof []string `json:"proof"`
	}
	if err := json.Unmarshal(body, &proof); err != nil {
		return nil, &Error{Code: 2, Message: "the consistency proof is not JSON"}
	}
	for _, h := range proof.Proof {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return nil, &Error{Code: 2, Message: "a consistency proof hash is not 32 bytes of hex"}
		}
		reply.Proof = append(reply.Proof, b)
	}
	return reply, nil
}

// FeedLine is one entry of an org's feed: its seq, its place in the org's chain, its hash and
// its canonical content.
type FeedLine struct {
	Seq    uint64          `json:"seq"`
	OrgSeq uint64          `json:"org_seq"`
	Hash   string          `json:"hash"`
	Entry  json.RawMessage `json:"entry"`
}

// FollowOptions: where to start (Cursor, the seq last received, and OrgSeq, its place in the
// org's chain, which makes the first line checked too), the kept checkpoint and how often it is
// checked (default 10 s), and Limit (0: none).
type FollowOptions struct {
	Cursor, OrgSeq *uint64
	State          *CheckpointState
	CheckEvery     time.Duration
	Limit          int
}

// Follow calls each for the org's entries after the cursor, then for each new one as it becomes
// durable, until the stream ends (Limit, a revoked token, the daemon stopping: nil), ctx ends,
// each returns an error, or a check fails (ErrRollback, ErrFork, ErrGap, wrapped).
func (p *ReadPort) Follow(ctx context.Context, org string, opt FollowOptions, each func(FeedLine) error) error {
	every := opt.CheckEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	if opt.State != nil {
		if _, err := opt.State.Check(p); err != nil {
			return err
		}
	}
	checked := time.Now()
	q := url.Values{}
	if opt.Cursor != nil {
		q.Set("cursor", strconv.FormatUint(*opt.Cursor, 10))
	}
	if opt.Limit > 0 {
		q.Set("limit", strconv.Itoa(opt.Limit))
	}
	path := "/v1/orgs/" + url.PathEscape(org) + "/feed"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	// The stream has no overall timeout: heartbeats come every 15 s, and ctx ends it.
	r, err := p.open(ctx, &http.Client{}, path)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	lines := bufio.NewScanner(r.Body)
	lines.Buffer(make([]byte, 64<<10), maxFeedLine)
	var last *FeedLine
	if opt.OrgSeq != nil && opt.Cursor != nil {
		last = &FeedLine{Seq: *opt.Cursor, OrgSeq: *opt.OrgSeq}
	}
	for lines.Scan() {
		if opt.State != nil && time.Since(checked) >= every {
			if _, err := opt.State.Check(p); err != nil {
				return err
			}
			checked = time.Now()
		}
		raw := lines.Bytes()
		if len(strings.TrimSpace(string(raw))) == 0 {
			continue
		}
		var line FeedLine
		if err := json.Unmarshal(raw, &line); err != nil {
			return &Error{Code: 2, Message: "a feed line is not JSON: " + err.Error()}
		}
		if last != nil && line.OrgSeq != last.OrgSeq+1 {
			what := "left out an entry"
			if line.OrgSeq <= last.OrgSeq {
				what = "repeated an entry"
			}
			return fmt.Errorf("%w: the feed went from the org's entry %d (seq %d) to %d (seq %d): it %s",
				ErrGap, last.OrgSeq, last.Seq, line.OrgSeq, line.Seq, what)
		}
		last = &line
		if err := each(line); err != nil {
			return err
		}
	}
	if err := lines.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("auditlog: reading the feed: %w", err)
	}
	return ctx.Err()
}
