package auditlog

// Every writer a witness (format-spec.md §8, §9.1): a writer keeps, in a file, the newest
// checkpoint of the log it verified, and on each check asks the daemon for its newest with
// the RFC 9162 consistency proof from the kept one. A smaller tree is a rollback, another root
// at the same size or a proof that fails is a fork; either is refused with both signed notes
// named, and the kept file is left as it was. The same rule as `auditctl append --state`.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	typeCheckpoint      = 0x03
	typeCheckpointReply = 0x84
)

// CheckpointReply is the daemon's newest signed checkpoint (a C2SP signed note) and the RFC
// 9162 consistency proof to it from the size the writer asked from.
type CheckpointReply struct {
	Note  string
	Proof [][]byte
	// Successions are the statements that handed the log's key on (format-spec.md §8.8),
	// oldest first; a writer follows them from the key it holds.
	Successions []string
}

// ErrRollback: the log shows a smaller tree (or none) than one its key signed before.
var ErrRollback = errors.New("ROLLBACK")

// ErrFork: the log shows a tree that does not extend one its key signed before.
var ErrFork = errors.New("FORK")

func decodeCheckpointReply(body []byte) Result {
	if len(body) < 5 {
		return Result{Err: &Error{Code: 2, Message: "short CHECKPOINT_REPLY"}}
	}
	n := binary.LittleEndian.Uint32(body)
	// Compared with what is there before any arithmetic on the peer's number.
	if uint64(n) > uint64(len(body)-5) {
		return Result{Err: &Error{Code: 2, Message: "CHECKPOINT_REPLY note length beyond the frame"}}
	}
	note := string(body[4 : 4+n])
	rest := body[4+n:]
	count := int(rest[0])
	if len(rest)-1 < count*32 {
		return Result{Err: &Error{Code: 2, Message: "CHECKPOINT_REPLY proof length does not match its count"}}
	}
	proof := make([][]byte, count)
	for i := range proof {
		proof[i] = rest[1+32*i : 1+32*(i+1)]
	}
	// Then, when asked for and there are any: k:u8 (len:u16 statement){k}.
	rest = rest[1+32*count:]
	var successions []string
	if len(rest) > 0 {
		k := int(rest[0])
		rest = rest[1:]
		for i := 0; i < k; i++ {
			if len(rest) < 2 || len(rest)-2 < int(binary.LittleEndian.Uint16(rest)) {
				return Result{Err: &Error{Code: 2, Message: "CHECKPOINT_REPLY key succession beyond the frame"}}
			}
			n := int(binary.LittleEndian.Uint16(rest))
			successions = append(successions, string(rest[2:2+n]))
			rest = rest[2+n:]
		}
		if len(rest) != 0 {
			return Result{Err: &Error{Code: 2, Message: "CHECKPOINT_REPLY has bytes after its key successions"}}
		}
	}
	return Result{Checkpoint: &CheckpointReply{Note: note, Proof: proof, Successions: successions}}
}

// Checkpoint asks for the newest signed checkpoint and the consistency proof from size old
// (0: none held).
func (c *Client) Checkpoint(old uint64) (*CheckpointReply, error) {
	body := make([]byte, 9)
	binary.LittleEndian.PutUint64(body, old)
	body[8] = 2 // with the log's key successions
	r := c.request(typeCheckpoint, body)
	if r.Err != nil {
		return nil, r.Err
	}
	if r.Checkpoint == nil {
		return nil, &Error{Code: 2, Message: "the daemon answered a CHECKPOINT with something else"}
	}
	return r.Checkpoint, nil
}

// VerifierKey is a log's public key as `auditctl key DATA` prints it: name+hash+base64.
type VerifierKey struct {
	Name string
	hash []byte
	key  ed25519.PublicKey
}

// ParseVerifierKey reads a C2SP signed-note verifier key (Ed25519).
func ParseVerifierKey(text string) (*VerifierKey, error) {
	parts := strings.SplitN(strings.TrimSpace(text), "+", 3)
	if len(parts) != 3 || parts[0] == "" || len(parts[1]) != 8 {
		return nil, fmt.Errorf("auditlog: %q is not a verifier key (name+hash+base64)", text)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != 1 {
		return nil, fmt.Errorf("auditlog: %q is not an Ed25519 verifier key", text)
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	if hex.EncodeToString(h[:4]) != parts[1] {
		return nil, fmt.Errorf("auditlog: the key hash in %q does not match its key", text)
	}
	return &VerifierKey{Name: parts[0], hash: h[:4], key: ed25519.PublicKey(raw[1:])}, nil
}

// A checkpoint opened with the log's key.
type openedCheckpoint struct {
	size uint64
	root []byte
	note string
}

// open checks that note is a checkpoint of this key's log signed by it, and reads it.
func (v *VerifierKey) open(note string) (*openedCheckpoint, error) {
	sep := strings.Index(note, "\n\n")
	if sep < 0 || !strings.HasSuffix(note, "\n") {
		return nil, errors.New("not a signed note")
	}
	text := note[:sep+1]
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 || lines[0] != v.Name {
		return nil, fmt.Errorf("not a checkpoint of log %s", v.Name)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return nil, errors.New("the checkpoint's size is not a decimal number")
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return nil, errors.New("the checkpoint's root is not a SHA-256 hash")
	}
	for _, line := range strings.Split(strings.TrimSuffix(note[sep+2:], "\n"), "\n") {
		prefix := "\u2014 " + v.Name + " "
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(line[len(prefix):])
		if err != nil || len(sig) != 68 || !bytes.Equal(sig[:4], v.hash) {
			continue
		}
		if ed25519.Verify(v.key, []byte(text), sig[4:]) {
			return &openedCheckpoint{size: size, root: root, note: note}, nil
		}
		return nil, errors.New("the checkpoint's signature does not verify with the log's key")
	}
	return nil, errors.New("the checkpoint carries no signature by the log's key")
}

func nodeHash(l, r []byte) []byte {
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(l)
	h.Write(r)
	return h.Sum(nil)
}

// Consistent reports whether proof shows a tree of size1 with root1 is a prefix of a tree of
// size2 with root2 (RFC 9162 §2.1.4.2).
func Consistent(size1, size2 uint64, root1, root2 []byte, proof [][]byte) bool {
	if size1 > size2 {
		return false
	}
	if size1 == size2 {
		return len(proof) == 0 && bytes.Equal(root1, root2)
	}
	if size1 == 0 {
		return len(proof) == 0
	}
	path := proof
	if size1&(size1-1) == 0 {
		path = append([][]byte{root1}, proof...)
	}
	if len(path) == 0 {
		return false
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			fr = nodeHash(c, fr)
			sr = nodeHash(c, sr)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			sr = nodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && bytes.Equal(fr, root1) && bytes.Equal(sr, root2)
}

// CheckpointState keeps in Path the newest checkpoint of the log (Key) this writer verified,
// and in Path+".keys" the key successions it followed from Key (format-spec.md §8.8).
type CheckpointState struct {
	Path string
	Key  *VerifierKey
}

// Check asks c (the ingest socket's Client, or a ReadPort) for the newest checkpoint and
// accepts it only if it extends the kept one;
// then keeps it (written whole: temp, fsync, rename). Returns the size it now holds. On a
// rollback or fork it returns ErrRollback or ErrFork (wrapped, naming both sizes) and keeps
// the file as it was: the two signed notes are the evidence.
func (s *CheckpointState) Check(c CheckpointSource) (uint64, error) {
	var kept *openedCheckpoint
	had, chain, err := s.followed()
	if err != nil {
		return 0, fmt.Errorf("auditlog: the key successions kept in %s.keys: %v", s.Path, err)
	}
	if data, err := os.ReadFile(s.Path); err == nil {
		if kept, err = openIn(chain, string(data)); err != nil {
			return 0, fmt.Errorf("auditlog: the checkpoint kept in %s: %v; restore it or remove it to start again", s.Path, err)
		}
	} else if !os.IsNotExist(err) {
		return 0, fmt.Errorf("auditlog: cannot read %s: %w", s.Path, err)
	}
	var old uint64
	if kept != nil {
		old = kept.size
	}
	reply, err := c.Checkpoint(old)
	if err != nil {
		var e *Error
		if kept != nil && errors.As(err, &e) && e.Code == 4 && strings.Contains(e.Message, "no checkpoint") {
			return 0, fmt.Errorf("%w: the log shows no checkpoint, but its key signed one of %d entries (kept in %s)", ErrRollback, kept.size, s.Path)
		}
		return 0, err
	}
	// The log's statements must extend the ones followed: a log that shows fewer or others
	// shows another history of its keys.
	if len(reply.Successions) < len(had) {
		return 0, fmt.Errorf("%w: the log shows %d key successions, but this writer followed %d (kept in %s.keys)", ErrFork, len(reply.Successions), len(had), s.Path)
	}
	for i := range had {
		if reply.Successions[i] != had[i] {
			return 0, fmt.Errorf("%w: the log's key successions differ from the ones this writer followed (kept in %s.keys)", ErrFork, s.Path)
		}
	}
	if len(reply.Successions) > len(had) {
		if chain, err = followKeys(s.Key, s.keyText(), reply.Successions); err != nil {
			return 0, fmt.Errorf("auditlog: the log's key successions: %v", err)
		}
	}
	cur, err := openIn(chain, reply.Note)
	if err != nil {
		return 0, fmt.Errorf("auditlog: the log's checkpoint: %v", err)
	}
	if kept != nil {
		switch {
		case cur.size < kept.size:
			return 0, fmt.Errorf("%w: the log shows %d entries, but its key signed a tree of %d (kept in %s)", ErrRollback, cur.size, kept.size, s.Path)
		case cur.size == kept.size && !bytes.Equal(cur.root, kept.root):
			return 0, fmt.Errorf("%w: two trees of %d entries with different roots, both signed by the log's key (kept in %s)", ErrFork, cur.size, s.Path)
		case cur.size > kept.size && !Consistent(kept.size, cur.size, kept.root, cur.root, reply.Proof):
			return 0, fmt.Errorf("%w: the tree of %d entries does not extend the one of %d kept in %s", ErrFork, cur.size, kept.size, s.Path)
		}
	}
	if len(reply.Successions) > len(had) {
		data, _ := json.Marshal(reply.Successions)
		if err := writeWhole(s.Path+".keys", data); err != nil {
			return 0, fmt.Errorf("auditlog: cannot keep the key successions in %s.keys: %w", s.Path, err)
		}
	}
	if kept == nil || cur.size > kept.size {
		if err := writeWhole(s.Path, []byte(cur.note)); err != nil {
			return 0, fmt.Errorf("auditlog: cannot keep the checkpoint in %s: %w", s.Path, err)
		}
	}
	return cur.size, nil
}

// writeWhole replaces path with data: a temporary file, fsync, rename, fsync of the folder.
func writeWhole(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, time.Now().UnixNano())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
