package auditlog

// Keys that outlive themselves (format-spec.md §8.8): the statements that hand a log's key on,
// followed from the key a writer holds, each signed by the key it replaces and the new one;
// a checkpoint is opened only with a key in force at its size.

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// signed reports whether note carries a valid signature by v over its text.
func (v *VerifierKey) signed(note string) bool {
	sep := strings.Index(note, "\n\n")
	if sep < 0 {
		return false
	}
	prefix := "\u2014 " + v.Name + " "
	for _, line := range strings.Split(strings.TrimSuffix(note[sep+2:], "\n"), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(line[len(prefix):])
		if err == nil && len(sig) == 68 && bytes.Equal(sig[:4], v.hash) && ed25519.Verify(v.key, []byte(note[:sep+1]), sig[4:]) {
			return true
		}
	}
	return false
}

// inForce is one key of a log and the tree sizes it signs: from, to (last: no end).
type inForce struct {
	key      *VerifierKey
	text     string
	from, to uint64
	last     bool
}

// followKeys follows the key successions from key (format-spec.md §8.8): each statement must
// be signed by the key in force (the one it replaces) and by the new key, and hand over after
// the one before; statements before the one replacing key are skipped.
func followKeys(key *VerifierKey, keyText string, notes []string) ([]inForce, error) {
	chain := []inForce{{key: key, text: keyText, last: true}}
	reached := false
	for _, note := range notes {
		sep := strings.Index(note, "\n\n")
		if sep < 0 {
			return nil, errors.New("a key succession is not a signed note")
		}
		l := strings.Split(note[:sep], "\n")
		if len(l) != 6 || l[0] != "auditlog key succession/1" {
			return nil, errors.New("a key succession is malformed")
		}
		if !reached {
			reached = l[2] == keyText || l[3] == keyText
			if l[2] != keyText {
				continue
			}
		}
		cur := &chain[len(chain)-1]
		if l[2] != cur.text {
			return nil, errors.New("a key succession is not signed by the key it replaces: refused")
		}
		next, err := ParseVerifierKey(l[3])
		if err != nil || next.Name != key.Name {
			return nil, errors.New("a key succession names a key of another log")
		}
		from, err1 := strconv.ParseUint(l[4], 10, 64)
		to, err2 := strconv.ParseUint(l[5], 10, 64)
		if err1 != nil || err2 != nil || from == 0 || to < from || (len(chain) > 1 && from <= cur.from) {
			return nil, errors.New("a key succession's sizes are not in order")
		}
		if !cur.key.signed(note) || !next.signed(note) {
			return nil, errors.New("a key succession is not signed by both the key it replaces and the new key: refused")
		}
		cur.to, cur.last = to, false
		chain = append(chain, inForce{key: next, text: l[3], from: from, last: true})
	}
	return chain, nil
}

// openIn opens a checkpoint signed by a key of chain in force at its size.
func openIn(chain []inForce, note string) (*openedCheckpoint, error) {
	var firstErr error
	for i := len(chain) - 1; i >= 0; i-- {
		cp, err := chain[i].key.open(note)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if cp.size >= chain[i].from && (chain[i].last || cp.size <= chain[i].to) {
			return cp, nil
		}
		firstErr = fmt.Errorf("the checkpoint of %d entries is signed by a key not in force at that size (retired)", cp.size)
	}
	return nil, firstErr
}

func (s *CheckpointState) keyText() string {
	return s.Key.Name + "+" + hex.EncodeToString(s.Key.hash) + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, s.Key.key...))
}

// followed is the chain from Key through the statements kept beside the checkpoint.
func (s *CheckpointState) followed() ([]string, []inForce, error) {
	var notes []string
	if data, err := os.ReadFile(s.Path + ".keys"); err == nil {
		if err := json.Unmarshal(data, &notes); err != nil {
			return nil, nil, fmt.Errorf("auditlog: %s.keys is not a JSON list of key successions", s.Path)
		}
	} else if !os.IsNotExist(err) {
		return nil, nil, err
	}
	chain, err := followKeys(s.Key, s.keyText(), notes)
	return notes, chain, err
}
