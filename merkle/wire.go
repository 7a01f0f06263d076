package merkle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/hearsay-io/hearsay/wire"
)

// Wire format v1 of anti-entropy; docs/anti-entropy.md describes it byte by
// byte. The header every hearsay datagram starts with, and the packet types
// (wire.AEQuery, wire.AEAnswer), are package wire's: the Append functions
// write whole datagrams, the Decode functions and the handlers take the
// body that wire.Parse returns.

// Limits of the wire format.
const (
	MinHashSize     = 4  // bytes of a hash on the wire, at least
	MaxHashSize     = 32 // a whole SHA-256
	DefaultHashSize = 8  // a false match has odds of 2^-64 per compared node
	maxSkip         = 15 // a leaf entry sends at least one byte per ID
)

// ErrMalformed: a datagram or body that does not decode. Callers count
// these as drops and never answer them.
var ErrMalformed = errors.New("merkle: malformed")

// Query is the body of a wire.AEQuery datagram: "here are positions where
// our trees differ; send me your nodes there". It is stateless for the
// responder: everything needed to answer travels in every query.
type Query struct {
	Session uint32 // the initiator's session, echoed in the answer
	Seq     uint64 // the query's number within the session, echoed
	// Shape is the initiator's tree shape; the responder answers nothing
	// but its own shape if it differs.
	Shape TreeConfig
	// HashSize is the number of bytes of every hash in the query and its
	// answer: hashes are truncated to their first HashSize bytes.
	HashSize int
	// MaxAnswerSize bounds the answer datagram, header included.
	MaxAnswerSize int
	Items         []QueryItem
}

// QueryItem asks for the responder's node at Pos.
type QueryItem struct {
	Pos Position
	// Hash, if not nil, is the initiator's hash of the node (HashSize
	// bytes): the responder answers EntryEqual if its own matches. Only
	// the root is sent with a hash; other positions are known to differ.
	Hash []byte
}

// Answer is the body of a wire.AEAnswer datagram: the responder's nodes at
// the first len(Entries) positions of the query, in order. The initiator
// asks again for the positions left out because they did not fit.
type Answer struct {
	Session  uint32
	Seq      uint64
	Shape    TreeConfig // the responder's tree shape
	HashSize int
	Entries  []Entry
}

// EntryKind says what an Entry holds.
type EntryKind uint8

// Kinds of Entry.
const (
	EntryEqual EntryKind = 0 // the node's hash equals the one in the query
	EntryInner EntryKind = 1 // an inner node: its children's hashes
	EntryLeaf  EntryKind = 2 // a leaf (at most LeafSize IDs): its IDs
)

// Entry is the responder's node at one queried position. Its byte slices
// alias the datagram it was decoded from.
type Entry struct {
	Kind EntryKind
	// Skip (EntryLeaf) is the number of leading bytes each ID shares with
	// the position's prefix and that are therefore not sent.
	Skip uint8
	// Children (EntryInner) is a bitmap of the non-empty children: child i
	// is bit i%8 of byte i/8.
	Children []byte
	// Data holds, for EntryInner, HashSize bytes per non-empty child, in
	// child order; for EntryLeaf, the last 16-Skip bytes of each ID, in
	// ascending order.
	Data []byte
}

// LeafLen returns the number of IDs of a leaf entry.
func (e *Entry) LeafLen() int { return len(e.Data) / (16 - int(e.Skip)) }

// LeafID returns the i-th ID of a leaf entry, completed with the queried
// position's prefix.
func (e *Entry) LeafID(i int, prefix ID) ID {
	w := 16 - int(e.Skip)
	copy(prefix[e.Skip:], e.Data[i*w:(i+1)*w])
	return prefix
}

func bitmapSize(fanoutBits int) int { return (1<<fanoutBits + 7) / 8 }

func prefixSize(level, fanoutBits int) int { return (min(level*fanoutBits, 128) + 7) / 8 }

// leafSkip is how many leading bytes the IDs of a leaf at level share with
// its prefix.
func leafSkip(level, fanoutBits int) int { return min(level*fanoutBits/8, maxSkip) }

// appendQueryHead appends a query datagram up to, not including, the item
// count.
func appendQueryHead(dst []byte, q *Query) []byte {
	dst = wire.AppendHeader(dst, wire.AEQuery)
	dst = binary.BigEndian.AppendUint32(dst, q.Session)
	dst = binary.AppendUvarint(dst, q.Seq)
	dst = append(dst, byte(q.Shape.FanoutBits), byte(q.Shape.LeafSize), byte(q.HashSize))
	return binary.AppendUvarint(dst, uint64(q.MaxAnswerSize))
}

func appendQueryItem(dst []byte, it *QueryItem, fanoutBits int) []byte {
	flag := uint64(0)
	if it.Hash != nil {
		flag = 1
	}
	dst = binary.AppendUvarint(dst, uint64(it.Pos.Level)<<1|flag)
	dst = append(dst, it.Pos.Prefix[:prefixSize(it.Pos.Level, fanoutBits)]...)
	return append(dst, it.Hash...)
}

// AppendQuery appends a whole wire.AEQuery datagram (header included).
// Prefix bits past each position's level are sent as zero.
func AppendQuery(dst []byte, q *Query) []byte {
	dst = appendQueryHead(dst, q)
	dst = binary.AppendUvarint(dst, uint64(len(q.Items)))
	for i := range q.Items {
		it := q.Items[i]
		it.Pos.Prefix = maskBits(it.Pos.Prefix, it.Pos.Level*q.Shape.FanoutBits)
		dst = appendQueryItem(dst, &it, q.Shape.FanoutBits)
	}
	return dst
}

// DecodeQuery decodes the body of a wire.AEQuery datagram. Item hashes
// alias body. It allocates at most in proportion to len(body).
func DecodeQuery(body []byte) (*Query, error) {
	q := &Query{}
	session, seq, b, err := readSessionSeq(body)
	if err != nil {
		return nil, err
	}
	q.Session, q.Seq = session, seq
	if len(b) < 3 {
		return nil, fmt.Errorf("%w: truncated query", ErrMalformed)
	}
	q.Shape = TreeConfig{FanoutBits: int(b[0]), LeafSize: int(b[1])}
	q.HashSize = int(b[2])
	if err := q.Shape.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if q.HashSize < MinHashSize || q.HashSize > MaxHashSize {
		return nil, fmt.Errorf("%w: hash size %d", ErrMalformed, q.HashSize)
	}
	var maxAnswer, count uint64
	if maxAnswer, b, err = readUvarint(b[3:]); err != nil {
		return nil, err
	}
	if maxAnswer < wire.MinPacketSize || maxAnswer > wire.MaxUDPPayload {
		return nil, fmt.Errorf("%w: max answer size %d", ErrMalformed, maxAnswer)
	}
	q.MaxAnswerSize = int(maxAnswer)
	if count, b, err = readUvarint(b); err != nil {
		return nil, err
	}
	// An item takes at least one byte.
	if count == 0 || count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d items in %d bytes", ErrMalformed, count, len(b))
	}
	fb := q.Shape.FanoutBits
	deepest := maxLevel(fb)
	q.Items = make([]QueryItem, count)
	for i := range q.Items {
		var v uint64
		if v, b, err = readUvarint(b); err != nil {
			return nil, err
		}
		level := v >> 1
		if level > uint64(deepest) {
			return nil, fmt.Errorf("%w: level %d below the deepest, %d", ErrMalformed, level, deepest)
		}
		it := &q.Items[i]
		it.Pos.Level = int(level)
		n := prefixSize(it.Pos.Level, fb)
		if len(b) < n {
			return nil, fmt.Errorf("%w: truncated prefix", ErrMalformed)
		}
		copy(it.Pos.Prefix[:], b[:n])
		if maskBits(it.Pos.Prefix, it.Pos.Level*fb) != it.Pos.Prefix {
			return nil, fmt.Errorf("%w: prefix bits set past its level", ErrMalformed)
		}
		b = b[n:]
		if v&1 != 0 {
			if len(b) < q.HashSize {
				return nil, fmt.Errorf("%w: truncated hash", ErrMalformed)
			}
			it.Hash, b = b[:q.HashSize:q.HashSize], b[q.HashSize:]
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	return q, nil
}

// appendAnswerHead appends an answer datagram up to, not including, the
// entry count.
func appendAnswerHead(dst []byte, a *Answer) []byte {
	dst = wire.AppendHeader(dst, wire.AEAnswer)
	dst = binary.BigEndian.AppendUint32(dst, a.Session)
	dst = binary.AppendUvarint(dst, a.Seq)
	return append(dst, byte(a.Shape.FanoutBits), byte(a.Shape.LeafSize), byte(a.HashSize))
}

func appendEntry(dst []byte, e *Entry) []byte {
	dst = append(dst, byte(e.Kind))
	switch e.Kind {
	case EntryInner:
		dst = append(dst, e.Children...)
		dst = append(dst, e.Data...)
	case EntryLeaf:
		dst = append(dst, e.Skip)
		dst = binary.AppendUvarint(dst, uint64(e.LeafLen()))
		dst = append(dst, e.Data...)
	}
	return dst
}

// AppendAnswer appends a whole wire.AEAnswer datagram (header included).
func AppendAnswer(dst []byte, a *Answer) []byte {
	dst = appendAnswerHead(dst, a)
	dst = binary.AppendUvarint(dst, uint64(len(a.Entries)))
	for i := range a.Entries {
		dst = appendEntry(dst, &a.Entries[i])
	}
	return dst
}

// DecodeAnswer decodes the body of a wire.AEAnswer datagram. Entries alias
// body. It allocates at most in proportion to len(body).
func DecodeAnswer(body []byte) (*Answer, error) {
	a := &Answer{}
	session, seq, b, err := readSessionSeq(body)
	if err != nil {
		return nil, err
	}
	a.Session, a.Seq = session, seq
	if len(b) < 3 {
		return nil, fmt.Errorf("%w: truncated answer", ErrMalformed)
	}
	a.Shape = TreeConfig{FanoutBits: int(b[0]), LeafSize: int(b[1])}
	a.HashSize = int(b[2])
	if err := a.Shape.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if a.HashSize < MinHashSize || a.HashSize > MaxHashSize {
		return nil, fmt.Errorf("%w: hash size %d", ErrMalformed, a.HashSize)
	}
	var count uint64
	if count, b, err = readUvarint(b[3:]); err != nil {
		return nil, err
	}
	// An entry takes at least one byte.
	if count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", ErrMalformed, count, len(b))
	}
	a.Entries = make([]Entry, count)
	for i := range a.Entries {
		if b, err = decodeEntry(&a.Entries[i], b, a.Shape.FanoutBits, a.HashSize); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	return a, nil
}

func decodeEntry(e *Entry, b []byte, fanoutBits, hashSize int) ([]byte, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("%w: truncated entry", ErrMalformed)
	}
	e.Kind, b = EntryKind(b[0]), b[1:]
	switch e.Kind {
	case EntryEqual:
		return b, nil
	case EntryInner:
		n := bitmapSize(fanoutBits)
		if len(b) < n {
			return nil, fmt.Errorf("%w: truncated bitmap", ErrMalformed)
		}
		e.Children, b = b[:n:n], b[n:]
		set := 0
		for _, x := range e.Children {
			set += bits.OnesCount8(x)
		}
		if fanoutBits < 3 && e.Children[0]>>(1<<fanoutBits) != 0 {
			return nil, fmt.Errorf("%w: bitmap names children past the fanout", ErrMalformed)
		}
		if set == 0 {
			return nil, fmt.Errorf("%w: inner node with no children", ErrMalformed)
		}
		n = set * hashSize
		if len(b) < n {
			return nil, fmt.Errorf("%w: truncated hashes", ErrMalformed)
		}
		e.Data, b = b[:n:n], b[n:]
		return b, nil
	case EntryLeaf:
		var err error
		e.Skip, e.Data, b, err = decodeIDRun(b)
		return b, err
	}
	return nil, fmt.Errorf("%w: entry kind %d", ErrMalformed, e.Kind)
}

// AppendIDs appends a list of IDs: a uvarint count, then 16 bytes per ID.
// It is the body of any packet that names messages, such as a request for
// the bodies of the IDs a session found missing.
func AppendIDs(dst []byte, ids []ID) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for i := range ids {
		dst = append(dst, ids[i][:]...)
	}
	return dst
}

// DecodeIDs decodes a list of IDs that fills b exactly. It allocates at most
// len(b) bytes.
func DecodeIDs(b []byte) ([]ID, error) {
	count, b, err := readUvarint(b)
	if err != nil {
		return nil, err
	}
	if count != uint64(len(b)/16) || len(b)%16 != 0 {
		return nil, fmt.Errorf("%w: %d IDs in %d bytes", ErrMalformed, count, len(b))
	}
	ids := make([]ID, count)
	for i := range ids {
		copy(ids[i][:], b[16*i:])
	}
	return ids, nil
}

// readSessionSeq reads the session and sequence number every body starts
// with.
func readSessionSeq(b []byte) (session uint32, seq uint64, rest []byte, err error) {
	if len(b) < 4 {
		return 0, 0, nil, fmt.Errorf("%w: truncated body", ErrMalformed)
	}
	session = binary.BigEndian.Uint32(b)
	seq, rest, err = readUvarint(b[4:])
	return session, seq, rest, err
}

// decodeIDRun reads a skip byte, a count and that many IDs less their
// first skip bytes, strictly ascending: a v1 LEAF, a v2 IDS.
func decodeIDRun(b []byte) (skip uint8, data, rest []byte, err error) {
	if len(b) < 1 {
		return 0, nil, nil, fmt.Errorf("%w: truncated IDs", ErrMalformed)
	}
	skip = b[0]
	if skip > maxSkip {
		return 0, nil, nil, fmt.Errorf("%w: IDs skip %d bytes", ErrMalformed, skip)
	}
	var count uint64
	if count, b, err = readUvarint(b[1:]); err != nil {
		return 0, nil, nil, err
	}
	w := 16 - int(skip)
	if count > uint64(len(b)/w) {
		return 0, nil, nil, fmt.Errorf("%w: %d IDs in %d bytes", ErrMalformed, count, len(b))
	}
	n := int(count) * w
	data, rest = b[:n:n], b[n:]
	for k := w; k < n; k += w {
		if string(data[k-w:k]) >= string(data[k:k+w]) {
			return 0, nil, nil, fmt.Errorf("%w: IDs not strictly ascending", ErrMalformed)
		}
	}
	return skip, data, rest, nil
}

func readUvarint(b []byte) (uint64, []byte, error) {
	v, rest, err := wire.ReadUvarint(b)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return v, rest, nil
}

func uvarintLen(v uint64) int { return wire.UvarintLen(v) }
