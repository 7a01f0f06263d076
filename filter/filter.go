// Package filter holds seen filters: the record of which message IDs a node
// has already accepted, so that each message is delivered at most once.
//
// Two implementations satisfy SeenFilter: Memory (bounded, in-process) and
// LevelDB (on disk, survives restarts). Both are exact: an ID is remembered
// until the expiry it was added with, and only then forgotten. The gossip core
// refuses messages older than its MaxAge, so a filter never has to remember
// more than MaxAge worth of IDs.
package filter

import (
	"errors"
	"time"
)

// ID is a 16-byte message ID.
type ID = [16]byte

// ErrFull is returned by Add when the filter holds as many unexpired IDs as
// it was configured for. The caller must treat the message as not accepted
// (it will be offered again later), never as seen.
var ErrFull = errors.New("filter: full of unexpired IDs")

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("filter: closed")

// SeenFilter remembers message IDs until they expire.
//
// Implementations need not be safe for concurrent use: the gossip core calls
// them from one goroutine at a time.
type SeenFilter interface {
	// Add records id, to be remembered at least until expires. It reports
	// added=false, without error, when id is already present.
	Add(id ID, expires time.Time) (added bool, err error)
	// Contains reports whether id is present and not yet pruned.
	Contains(id ID) (bool, error)
	// Prune forgets every ID whose expiry is before now and returns how many
	// it removed.
	Prune(now time.Time) (removed int, err error)
	// Len is the number of IDs held.
	Len() int
	// Close releases the filter's resources; for LevelDB it flushes and
	// unlocks the database.
	Close() error
}
