package filter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	ldbfilter "github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// ErrCorrupt is wrapped by the errors LevelDB returns when its database is
// corrupt. Their text names the directory and says how to recover.
var ErrCorrupt = errors.New("filter: seen-filter database is corrupt")

// ErrInUse is wrapped by the error OpenLevelDB returns when the database
// directory is locked by another process, or already open in this one.
var ErrInUse = errors.New("filter: data directory is in use by another process")

// LevelDBConfig configures a LevelDB filter. The zero value is usable.
type LevelDBConfig struct {
	// Sync makes every Add fsync the write-ahead log before returning, so
	// that added IDs survive power loss and OS crashes; each Add then costs
	// a disk flush. Default false: Add returns once the write-ahead log is
	// written to the OS, which survives a crash of the process.
	Sync bool
}

// LevelDB is a SeenFilter stored in a LevelDB database
// (github.com/syndtr/goleveldb), so that a restarted node does not deliver
// again the messages it delivered before it stopped.
//
// Key layout, all integers big-endian:
//
//	's' | id (16 bytes)                   -> expiry (8 bytes)
//	'e' | expiry (8 bytes) | id (16 bytes) -> empty
//
// The 's' keys answer Contains and Add. The 'e' keys are an index sorted by
// expiry, so that Prune reads only the expired IDs with one range iterator.
// Expiry is Unix nanoseconds with the sign bit flipped, so that byte order
// is time order also before 1970. Both keys of an ID are always written and
// deleted in one batch, so the index never disagrees with the 's' keys.
//
// The database lives in its own directory, which it locks while open.
// LevelDB is not safe for concurrent use.
type LevelDB struct {
	db    *leveldb.DB
	dir   string
	wo    *opt.WriteOptions
	count int // number of 's' keys
}

const (
	prefixSeen   = 's'
	prefixExpiry = 'e'

	seenKeyLen   = 1 + 16
	expiryKeyLen = 1 + 8 + 16

	// pruneBatch bounds the number of IDs deleted per write batch, and so
	// the memory a Prune of many IDs holds at once.
	pruneBatch = 4096
)

// OpenLevelDB opens the seen-filter database in the directory path, creating
// it if needed. It fails with an error wrapping ErrInUse if another process
// (or another LevelDB in this process) has the directory open, and with one
// wrapping ErrCorrupt if the database cannot be read.
func OpenLevelDB(path string, cfg LevelDBConfig) (*LevelDB, error) {
	db, err := leveldb.OpenFile(path, &opt.Options{
		// Most Adds look up an ID that is not there yet; a Bloom filter
		// per table answers those without reading the table.
		Filter: ldbfilter.NewBloomFilter(10),
	})
	if err != nil {
		if isLockHeld(err) {
			return nil, inUseErr(path, err)
		}
		return nil, wrapErr(path, "open", err)
	}
	f := &LevelDB{db: db, dir: path, wo: &opt.WriteOptions{Sync: cfg.Sync}}
	it := db.NewIterator(util.BytesPrefix([]byte{prefixSeen}), &opt.ReadOptions{DontFillCache: true})
	for it.Next() {
		f.count++
	}
	it.Release()
	if err := it.Error(); err != nil {
		_ = db.Close()
		return nil, wrapErr(path, "count entries", err)
	}
	return f, nil
}

// Dir returns the directory of the database.
func (f *LevelDB) Dir() string { return f.dir }

// Add records id until expires. If id is already present, Add reports
// added=false and keeps the later of the two expiries.
func (f *LevelDB) Add(id ID, expires time.Time) (bool, error) {
	if f.db == nil {
		return false, ErrClosed
	}
	exp := unixNanos(expires)
	sk := seenKey(id)
	old, err := f.db.Get(sk[:], nil)
	switch {
	case err == nil:
		if len(old) != 8 {
			return false, corruptErr(f.dir, "add", fmt.Errorf("entry for ID %x has a %d-byte value, want 8", id, len(old)))
		}
		oldExp := decodeNanos(old)
		if exp <= oldExp {
			return false, nil
		}
		var b leveldb.Batch
		oldEK := expiryKey(oldExp, id)
		b.Delete(oldEK[:])
		f.put(&b, id, exp)
		if err := f.db.Write(&b, f.wo); err != nil {
			return false, wrapErr(f.dir, "add", err)
		}
		return false, nil
	case errors.Is(err, leveldb.ErrNotFound):
		var b leveldb.Batch
		f.put(&b, id, exp)
		if err := f.db.Write(&b, f.wo); err != nil {
			return false, wrapErr(f.dir, "add", err)
		}
		f.count++
		return true, nil
	default:
		return false, wrapErr(f.dir, "add", err)
	}
}

// put adds both keys of id to b.
func (f *LevelDB) put(b *leveldb.Batch, id ID, exp int64) {
	sk, ek := seenKey(id), expiryKey(exp, id)
	var v [8]byte
	encodeNanos(v[:], exp)
	b.Put(sk[:], v[:])
	b.Put(ek[:], nil)
}

// Contains reports whether id is present. An ID whose expiry has passed is
// still present until a Prune removes it.
func (f *LevelDB) Contains(id ID) (bool, error) {
	if f.db == nil {
		return false, ErrClosed
	}
	sk := seenKey(id)
	ok, err := f.db.Has(sk[:], nil)
	if err != nil {
		return false, wrapErr(f.dir, "contains", err)
	}
	return ok, nil
}

// Prune forgets every ID whose expiry is strictly before now and returns how
// many it removed. It deletes in batches of a few thousand IDs; if it fails
// part way, the IDs already removed stay removed and are counted.
func (f *LevelDB) Prune(now time.Time) (int, error) {
	if f.db == nil {
		return 0, ErrClosed
	}
	limit := make([]byte, 1+8)
	limit[0] = prefixExpiry
	encodeNanos(limit[1:], unixNanos(now))
	it := f.db.NewIterator(&util.Range{Start: []byte{prefixExpiry}, Limit: limit}, &opt.ReadOptions{DontFillCache: true})
	defer it.Release()

	removed := 0
	var b leveldb.Batch
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		if err := f.db.Write(&b, f.wo); err != nil {
			return err
		}
		n := b.Len() / 2
		removed += n
		f.count -= n
		b.Reset()
		return nil
	}
	for it.Next() {
		ek := it.Key()
		if len(ek) != expiryKeyLen {
			return removed, corruptErr(f.dir, "prune", fmt.Errorf("index key %x has %d bytes, want %d", ek, len(ek), expiryKeyLen))
		}
		var id ID
		copy(id[:], ek[1+8:])
		sk := seenKey(id)
		b.Delete(ek) // Batch copies the key.
		b.Delete(sk[:])
		if b.Len() >= 2*pruneBatch {
			if err := flush(); err != nil {
				return removed, wrapErr(f.dir, "prune", err)
			}
		}
	}
	if err := it.Error(); err != nil {
		return removed, wrapErr(f.dir, "prune", err)
	}
	if err := flush(); err != nil {
		return removed, wrapErr(f.dir, "prune", err)
	}
	return removed, nil
}

// Len returns the number of IDs held, expired or not; 0 after Close.
func (f *LevelDB) Len() int {
	if f.db == nil {
		return 0
	}
	return f.count
}

// Close flushes and closes the database and releases its directory lock.
// Every later call returns ErrClosed.
func (f *LevelDB) Close() error {
	if f.db == nil {
		return ErrClosed
	}
	db := f.db
	f.db = nil
	if err := db.Close(); err != nil {
		return wrapErr(f.dir, "close", err)
	}
	return nil
}

func seenKey(id ID) [seenKeyLen]byte {
	var k [seenKeyLen]byte
	k[0] = prefixSeen
	copy(k[1:], id[:])
	return k
}

func expiryKey(exp int64, id ID) [expiryKeyLen]byte {
	var k [expiryKeyLen]byte
	k[0] = prefixExpiry
	encodeNanos(k[1:9], exp)
	copy(k[9:], id[:])
	return k
}

// encodeNanos writes n big-endian with the sign bit flipped, so that
// comparing encodings byte by byte orders them as the int64s.
func encodeNanos(b []byte, n int64) {
	binary.BigEndian.PutUint64(b, uint64(n)^(1<<63))
}

func decodeNanos(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

// wrapErr adds the database directory and the operation to err, and for
// corruption, what the operator can do about it.
func wrapErr(dir, op string, err error) error {
	if isCorrupted(err) {
		return corruptErr(dir, op, err)
	}
	return fmt.Errorf("filter: seen-filter database at %s: %s: %w", dir, op, err)
}

func corruptErr(dir, op string, err error) error {
	return &dbError{
		sentinel: ErrCorrupt,
		cause:    err,
		msg: fmt.Sprintf("filter: the seen-filter database at %s is corrupt (%s: %v). "+
			"To recover, stop the node and move the directory aside (keep it for diagnosis); "+
			"the node then starts with an empty seen filter, so it may deliver again "+
			"messages younger than MaxAge that it had already delivered", dir, op, err),
	}
}

func inUseErr(dir string, err error) error {
	return &dbError{
		sentinel: ErrInUse,
		cause:    err,
		msg: fmt.Sprintf("filter: the data directory %s is in use by another process "+
			"(is another hearsay node running with the same data directory?): %v", dir, err),
	}
}

// dbError is an error with its own message that wraps both a sentinel, for
// callers to branch on, and the underlying cause.
type dbError struct {
	sentinel, cause error
	msg             string
}

func (e *dbError) Error() string   { return e.msg }
func (e *dbError) Unwrap() []error { return []error{e.sentinel, e.cause} }

func isCorrupted(err error) bool {
	if lerrors.IsCorrupted(err) {
		return true
	}
	var c1 *lerrors.ErrCorrupted
	var c2 *storage.ErrCorrupted
	return errors.As(err, &c1) || errors.As(err, &c2)
}
