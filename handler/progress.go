package handler

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/hearsay-io/hearsay/gossip"
)

// progress is what a handler has done, in the order the node delivered:
// every message up to after is handled, and of those taken since, the
// window says which are. A restart resumes after after and skips the
// window's done ones, so that nothing handled runs again and nothing
// unhandled is skipped.
type progress struct {
	path string // "": kept in memory only

	mu       sync.Mutex
	after    gossip.MessageID // valid if hasAfter
	hasAfter bool             // false: before everything the log holds
	window   []*pending       // taken, in order, not all done
	bytes    int              // payload bytes of the window's undone messages
	skip     map[gossip.MessageID]bool
	changed  chan struct{} // closed and replaced at each change
	dirty    chan struct{} // 1-buffered: the file needs writing
}

// pending is a message taken by a handler.
type pending struct {
	msg  gossip.Message
	done bool
}

// progressFile is a progress as kept on disk.
type progressFile struct {
	Handler string   `json:"handler"`         // the spec, for whoever reads the file
	After   string   `json:"after,omitempty"` // empty: before everything the log holds
	Done    []string `json:"done"`            // handled after after, out of order
}

// progressPath is the file of the handler spec in dir.
func progressPath(dir string, spec Spec) string {
	sum := sha256.Sum256([]byte(spec.String()))
	return filepath.Join(dir, "progress-"+hex.EncodeToString(sum[:8])+".json")
}

// loadProgress reads the progress of spec from dir; known=false if there
// is none yet.
func loadProgress(dir string, spec Spec) (p *progress, known bool, err error) {
	p = &progress{skip: map[gossip.MessageID]bool{}, changed: make(chan struct{}), dirty: make(chan struct{}, 1)}
	if dir == "" {
		return p, false, nil
	}
	p.path = progressPath(dir, spec)
	b, err := os.ReadFile(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("handler %q: progress: %w", spec.String(), err)
	}
	var f progressFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, false, fmt.Errorf("handler %q: progress file %s is corrupt (remove it to start from now): %w", spec.String(), p.path, err)
	}
	if f.After != "" {
		if p.after, err = gossip.ParseMessageID(f.After); err != nil {
			return nil, false, fmt.Errorf("handler %q: progress file %s: after: %w", spec.String(), p.path, err)
		}
		p.hasAfter = true
	}
	for _, s := range f.Done {
		id, err := gossip.ParseMessageID(s)
		if err != nil {
			return nil, false, fmt.Errorf("handler %q: progress file %s: done: %w", spec.String(), p.path, err)
		}
		p.skip[id] = true
	}
	return p, true, nil
}

// setStart sets the resume point of a handler that had none.
func (p *progress) setStart(after gossip.MessageID, hasAfter bool) {
	p.mu.Lock()
	p.after, p.hasAfter = after, hasAfter
	p.mu.Unlock()
	p.markDirty()
}

// resumePoint is where a new subscription must start so that it misses
// nothing taken since: after the last message taken, else after after.
func (p *progress) resumePoint() (gossip.MessageID, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.window); n > 0 {
		return p.window[n-1].msg.ID, true
	}
	return p.after, p.hasAfter
}

// skipped reports whether m was handled before a restart, and if so takes
// it into the window as done.
func (p *progress) skipped(m gossip.Message) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.skip[m.ID] {
		return false
	}
	delete(p.skip, m.ID)
	p.window = append(p.window, &pending{msg: gossip.Message{ID: m.ID}, done: true})
	p.advanceLocked()
	return true
}

// forgetSkips drops the done IDs the replay did not bring back: they are no
// longer in the log, and will not come again.
func (p *progress) forgetSkips() {
	p.mu.Lock()
	n := len(p.skip)
	clear(p.skip)
	p.mu.Unlock()
	if n > 0 {
		p.markDirty()
	}
}

// room reports whether a message of size bytes may be taken.
func (p *progress) room(size, maxPending, maxBytes int) (ok bool, changed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Done messages count too: they stay in the window, and in the file,
	// behind an undone one.
	n := len(p.window)
	ok = n == 0 || n < maxPending && p.bytes+size <= maxBytes
	return ok, p.changed
}

// take adds m to the window.
func (p *progress) take(m gossip.Message) *pending {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &pending{msg: m}
	p.window = append(p.window, e)
	p.bytes += len(m.Payload)
	return e
}

// complete marks e handled and moves after past the handled start of the
// window.
func (p *progress) complete(e *pending) {
	p.mu.Lock()
	e.done = true
	p.bytes -= len(e.msg.Payload)
	e.msg.Payload = nil
	p.advanceLocked()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	p.markDirty()
}

func (p *progress) advanceLocked() {
	i := 0
	for i < len(p.window) && p.window[i].done {
		p.after, p.hasAfter = p.window[i].msg.ID, true
		i++
	}
	p.window = append(p.window[:0], p.window[i:]...)
}

func (p *progress) markDirty() {
	select {
	case p.dirty <- struct{}{}:
	default:
	}
}

// snapshot is the progress as the file keeps it.
func (p *progress) snapshot(spec Spec) progressFile {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := progressFile{Handler: spec.String(), Done: []string{}}
	if p.hasAfter {
		f.After = p.after.String()
	}
	for _, e := range p.window {
		if e.done {
			f.Done = append(f.Done, e.msg.ID.String())
		}
	}
	for id := range p.skip {
		f.Done = append(f.Done, id.String())
	}
	return f
}

// save writes the progress to its file atomically: a temporary file,
// synced, renamed over the old one.
func (p *progress) save(spec Spec) error {
	if p.path == "" {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // patterns hold '>'
	enc.SetIndent("", "  ")
	if err := enc.Encode(p.snapshot(spec)); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err != nil {
		return fmt.Errorf("handler %q: progress: %w", spec.String(), err)
	}
	tmp := p.path + ".tmp"
	if err := writeSynced(tmp, buf.Bytes()); err != nil {
		return fmt.Errorf("handler %q: progress: %w", spec.String(), err)
	}
	if err := os.Rename(tmp, p.path); err != nil {
		return fmt.Errorf("handler %q: progress: %w", spec.String(), err)
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
