// Package msglog keeps the messages a node accepted during its retention
// window: for anti-entropy (to send a peer the bodies it lacks) and for
// resuming event streams (everything accepted after a given message). Two
// implementations: Memory and LevelDB (survives restarts).
//
// Entries are numbered in the order they were appended (acceptance order),
// pruned by creation time, and evicted oldest-created first when the log is
// over its byte bound: the same messages on every node of a cluster whose
// logs share a bound, as pruning is. Neither implementation is safe for
// concurrent use.
//
// The gossip core takes a Log in gossip.Config.Log (a node passes on
// node.Config.Log), and anti-entropy runs over it: a program that embeds
// hearsay may give it one of these or a Log of its own (a table of its
// database, say), as long as it keeps the contract of the interface below.
// The package's Example runs anti-entropy between two embedded nodes.
package msglog

import (
	"errors"
	"time"
)

// ID is a 16-byte message ID.
type ID = [16]byte

// DefaultMaxBytes bounds a log opened with a maxBytes of 0: 1 GiB, about
// 3.6 million messages of 256-byte payloads (docs/anti-entropy.md).
const DefaultMaxBytes = 1 << 30

// ErrClosed is returned after Close.
var ErrClosed = errors.New("msglog: closed")

// Entry is a logged message.
type Entry struct {
	Seq     uint64    // acceptance order, from 1
	ID      ID        //
	Created time.Time // the message's creation time (millisecond precision)
	Data    []byte    // the message's wire encoding; read-only (Memory hands out the logged slice)
}

// Log is a message log.
type Log interface {
	// Append logs a message unless its ID is already there. It returns the
	// IDs it evicted to stay within its byte bound, those created first
	// (the new message among them if it is the oldest). The log may keep data
	// itself rather than a copy (Memory does), so the caller must not
	// modify it afterwards.
	Append(id ID, created time.Time, data []byte) (evicted []ID, err error)
	// Get returns the message's encoding, or ok=false. It is read-only.
	Get(id ID) (data []byte, ok bool, err error)
	// Contains reports whether the ID is logged.
	Contains(id ID) (bool, error)
	// Prune removes the messages created before cutoff and returns their IDs.
	Prune(cutoff time.Time) (removed []ID, err error)
	// After calls fn for each entry appended after the entry of id, in order,
	// until fn returns false. found=false if id is not in the log (pruned, or
	// never seen): nothing is called then.
	After(id ID, fn func(Entry) bool) (found bool, err error)
	// ForEach calls fn for every entry in acceptance order until it returns false.
	ForEach(fn func(Entry) bool) error
	// Horizon is the creation time of the newest-created message ever
	// evicted for the byte bound (zero if none; it survives a restart for
	// a log that does). Messages created before it may be gone before
	// their retention ended, so the gossip core refuses them, and lets its
	// seen filter forget them: a repair from a peer that still has one
	// cannot deliver it twice.
	Horizon() (time.Time, error)
	// LastSeq is the sequence number of the last append (0 if none ever).
	LastSeq() uint64
	// Len and Bytes are the number and total size of the logged messages.
	Len() int
	Bytes() int64
	Close() error
}
