package msglog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	lverrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// LevelDB is a Log on disk.
//
// Key layout:
//
//	'q' seq(8, big-endian)                 -> id(16) created(8, unix ms) data   the log, in acceptance order
//	'i' id(16)                             -> seq(8)                            index by ID
//	'c' created(8, unix ms, biased) seq(8) -> empty                             index by creation time, for Prune
//
// Created times are stored with the sign bit flipped so that byte order is
// time order for negative times too.
type LevelDB struct {
	db       *leveldb.DB
	path     string
	maxBytes int64
	bytes    int64
	count    int
	lastSeq  uint64
	// cFloor is at or below every key of the index by creation time: the
	// key of the last entry evicted or pruned. Iterating from it skips the
	// deleted keys LevelDB keeps until compaction, which a log evicting at
	// its bound leaves by the million at the start of the index.
	cFloor  []byte
	horizon time.Time // Log.Horizon, kept under hKey
}

// ErrCorrupt reports a corrupt log database.
var ErrCorrupt = errors.New("msglog: message log database is corrupt")

// OpenLevelDB opens (or creates) the log at path, bounded to maxBytes (0:
// DefaultMaxBytes).
func OpenLevelDB(path string, maxBytes int64) (*LevelDB, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	db, err := leveldb.OpenFile(path, &opt.Options{})
	if err != nil {
		if lverrors.IsCorrupted(err) {
			return nil, fmt.Errorf("%w at %s (move the directory away to start with an empty log: anti-entropy refills it from peers): %w", ErrCorrupt, path, err)
		}
		return nil, fmt.Errorf("msglog: opening %s (is another hearsay node using this data directory?): %w", path, err)
	}
	l := &LevelDB{db: db, path: path, maxBytes: maxBytes, cFloor: []byte{'c'}}
	it := db.NewIterator(util.BytesPrefix([]byte{'q'}), nil)
	for it.Next() {
		seq := binary.BigEndian.Uint64(it.Key()[1:])
		l.count++
		l.bytes += int64(len(it.Value()) - 24)
		l.lastSeq = seq
	}
	it.Release()
	if err := it.Error(); err != nil {
		db.Close()
		return nil, fmt.Errorf("msglog: reading %s: %w", path, err)
	}
	switch h, err := db.Get(hKey, nil); {
	case err == nil && len(h) == 8:
		l.horizon = time.UnixMilli(int64(binary.BigEndian.Uint64(h) ^ (1 << 63)))
	case err == nil:
		db.Close()
		return nil, fmt.Errorf("%w at %s: a %d-byte horizon", ErrCorrupt, path, len(h))
	case !errors.Is(err, leveldb.ErrNotFound):
		db.Close()
		return nil, fmt.Errorf("msglog: reading %s: %w", path, err)
	}
	return l, nil
}

func qKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = 'q'
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

func iKey(id ID) []byte { return append([]byte{'i'}, id[:]...) }

func cKey(created int64, seq uint64) []byte {
	k := make([]byte, 17)
	k[0] = 'c'
	copy(k[1:], biasedMillis(created))
	binary.BigEndian.PutUint64(k[9:], seq)
	return k
}

// biasedMillis encodes Unix milliseconds with the sign bit flipped, so that
// byte order is time order.
func biasedMillis(ms int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(ms)^(1<<63))
}

func (l *LevelDB) ok() error {
	if l.db == nil {
		return ErrClosed
	}
	return nil
}

// Append implements Log.
func (l *LevelDB) Append(id ID, created time.Time, data []byte) ([]ID, error) {
	if err := l.ok(); err != nil {
		return nil, err
	}
	if has, err := l.db.Has(iKey(id), nil); err != nil || has {
		return nil, wrap(err)
	}
	seq := l.lastSeq + 1
	ms := created.UnixMilli()
	val := make([]byte, 24+len(data))
	copy(val, id[:])
	binary.BigEndian.PutUint64(val[16:], uint64(ms))
	copy(val[24:], data)
	var b leveldb.Batch
	b.Put(qKey(seq), val)
	b.Put(iKey(id), qKey(seq)[1:])
	ck := cKey(ms, seq)
	b.Put(ck, nil)
	if err := l.db.Write(&b, nil); err != nil {
		return nil, wrap(err)
	}
	if bytes.Compare(ck, l.cFloor) < 0 {
		l.cFloor = ck
	}
	l.lastSeq = seq
	l.count++
	l.bytes += int64(len(data))
	var evicted []ID
	for l.bytes > l.maxBytes && l.count > 1 {
		e, ok, err := l.oldest()
		if err != nil || !ok {
			return evicted, err
		}
		if err := l.evict(e); err != nil {
			return evicted, err
		}
		evicted = append(evicted, e.ID)
	}
	return evicted, nil
}

// oldest returns the entry created first, from the index by creation time.
func (l *LevelDB) oldest() (Entry, bool, error) {
	it := l.db.NewIterator(l.timeIndex(), nil)
	defer it.Release()
	if !it.Next() {
		return Entry{}, false, wrap(it.Error())
	}
	if len(it.Key()) != 17 {
		return Entry{}, false, fmt.Errorf("%w: bad time index key", ErrCorrupt)
	}
	seq := binary.BigEndian.Uint64(it.Key()[9:])
	v, err := l.db.Get(qKey(seq), nil)
	if err != nil {
		return Entry{}, false, fmt.Errorf("%w: time index without entry", ErrCorrupt)
	}
	e, err := decodeEntry(qKey(seq), v)
	return e, err == nil, err
}

// hKey holds the horizon (Log.Horizon): created(8, unix ms, biased).
var hKey = []byte{'h'}

// Horizon implements Log.
func (l *LevelDB) Horizon() (time.Time, error) {
	if err := l.ok(); err != nil {
		return time.Time{}, err
	}
	return l.horizon, nil
}

// timeIndex is the range of the index by creation time still live.
func (l *LevelDB) timeIndex() *util.Range {
	return &util.Range{Start: l.cFloor, Limit: []byte{'d'}}
}

func decodeEntry(k, v []byte) (Entry, error) {
	if len(k) != 9 || len(v) < 24 {
		return Entry{}, fmt.Errorf("%w: bad entry", ErrCorrupt)
	}
	var e Entry
	e.Seq = binary.BigEndian.Uint64(k[1:])
	copy(e.ID[:], v)
	e.Created = time.UnixMilli(int64(binary.BigEndian.Uint64(v[16:])))
	e.Data = append([]byte(nil), v[24:]...)
	return e, nil
}

// evict deletes e for the byte bound, raising the horizon with it.
func (l *LevelDB) evict(e Entry) error {
	var b leveldb.Batch
	h := l.horizon
	if e.Created.After(h) {
		h = e.Created
		b.Put(hKey, biasedMillis(h.UnixMilli()))
	}
	if err := l.deleteIn(&b, e); err != nil {
		return err
	}
	l.horizon = h
	return nil
}

func (l *LevelDB) delete(e Entry) error {
	var b leveldb.Batch
	return l.deleteIn(&b, e)
}

// deleteIn deletes e's keys, with whatever else b holds.
func (l *LevelDB) deleteIn(b *leveldb.Batch, e Entry) error {
	b.Delete(qKey(e.Seq))
	b.Delete(iKey(e.ID))
	ck := cKey(e.Created.UnixMilli(), e.Seq)
	b.Delete(ck)
	if err := l.db.Write(b, nil); err != nil {
		return wrap(err)
	}
	if bytes.Compare(ck, l.cFloor) > 0 {
		l.cFloor = ck // deletes go oldest first (evict, Prune)
	}
	l.count--
	l.bytes -= int64(len(e.Data))
	return nil
}

// Get implements Log.
func (l *LevelDB) Get(id ID) ([]byte, bool, error) {
	if err := l.ok(); err != nil {
		return nil, false, err
	}
	seq, err := l.db.Get(iKey(id), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, wrap(err)
	}
	v, err := l.db.Get(append([]byte{'q'}, seq...), nil)
	if err != nil || len(v) < 24 {
		return nil, false, fmt.Errorf("%w: index without entry", ErrCorrupt)
	}
	return v[24:], true, nil
}

// Contains implements Log.
func (l *LevelDB) Contains(id ID) (bool, error) {
	if err := l.ok(); err != nil {
		return false, err
	}
	has, err := l.db.Has(iKey(id), nil)
	return has, wrap(err)
}

// Prune implements Log.
func (l *LevelDB) Prune(cutoff time.Time) ([]ID, error) {
	if err := l.ok(); err != nil {
		return nil, err
	}
	var removed []ID
	it := l.db.NewIterator(&util.Range{Start: l.cFloor, Limit: cKey(cutoff.UnixMilli(), 0)}, nil)
	var seqs []uint64
	for it.Next() {
		seqs = append(seqs, binary.BigEndian.Uint64(it.Key()[9:]))
	}
	it.Release()
	if err := it.Error(); err != nil {
		return nil, wrap(err)
	}
	for _, seq := range seqs {
		v, err := l.db.Get(qKey(seq), nil)
		if err != nil {
			return removed, fmt.Errorf("%w: time index without entry", ErrCorrupt)
		}
		e, err := decodeEntry(qKey(seq), v)
		if err != nil {
			return removed, err
		}
		if err := l.delete(e); err != nil {
			return removed, err
		}
		removed = append(removed, e.ID)
	}
	return removed, nil
}

// After implements Log.
func (l *LevelDB) After(id ID, fn func(Entry) bool) (bool, error) {
	if err := l.ok(); err != nil {
		return false, err
	}
	seq, err := l.db.Get(iKey(id), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, wrap(err)
	}
	return true, l.iterate(binary.BigEndian.Uint64(seq)+1, fn)
}

// ForEach implements Log.
func (l *LevelDB) ForEach(fn func(Entry) bool) error {
	if err := l.ok(); err != nil {
		return err
	}
	return l.iterate(0, fn)
}

func (l *LevelDB) iterate(from uint64, fn func(Entry) bool) error {
	it := l.db.NewIterator(&util.Range{Start: qKey(from), Limit: []byte{'r'}}, nil)
	defer it.Release()
	for it.Next() {
		e, err := decodeEntry(it.Key(), it.Value())
		if err != nil {
			return err
		}
		if !fn(e) {
			return nil
		}
	}
	return wrap(it.Error())
}

// LastSeq implements Log.
func (l *LevelDB) LastSeq() uint64 { return l.lastSeq }

// Len implements Log.
func (l *LevelDB) Len() int { return l.count }

// Bytes implements Log.
func (l *LevelDB) Bytes() int64 { return l.bytes }

// Close implements Log.
func (l *LevelDB) Close() error {
	if l.db == nil {
		return nil
	}
	err := l.db.Close()
	l.db = nil
	return wrap(err)
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	if lverrors.IsCorrupted(err) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return fmt.Errorf("msglog: %w", err)
}

var (
	_ Log = (*LevelDB)(nil)
	_ Log = (*Memory)(nil)
)
