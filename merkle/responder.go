package merkle

import (
	"encoding/binary"
	"fmt"

	"github.com/hearsay-io/hearsay/wire"
)

// ResponderConfig configures a Responder. Zero values take the defaults.
type ResponderConfig struct {
	// MaxPacketSize bounds every answer datagram, in bytes; a query's
	// MaxAnswerSize bounds it further. From 512 to 65507. Default 1400.
	MaxPacketSize int
}

func (c *ResponderConfig) setDefaults() {
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
}

func (c *ResponderConfig) validate() error {
	if c.MaxPacketSize < wire.MinPacketSize || c.MaxPacketSize > wire.MaxUDPPayload {
		return fmt.Errorf("%w: MaxPacketSize %d out of range %d..%d", ErrInvalidConfig, c.MaxPacketSize, wire.MinPacketSize, wire.MaxUDPPayload)
	}
	return nil
}

// Responder answers the queries of other nodes' sessions from a tree. It
// keeps no state between queries: every query carries all it needs, a lost
// answer is recovered by the initiator asking again, and one datagram in
// gives at most one datagram out. Any number of peers may query it at once.
//
// A Responder is not safe for concurrent use; it reads the tree it was given,
// which must not be modified during a call.
type Responder struct {
	tree *Tree
	cfg  ResponderConfig
	body []byte // scratch: the entries of the answer being built
}

// NewResponder returns a responder that answers from tree.
func NewResponder(tree *Tree, cfg ResponderConfig) (*Responder, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Responder{tree: tree, cfg: cfg}, nil
}

// Answer answers query, the body of a wire.AEQuery datagram: it appends the answer
// datagram to dst, for the caller to send back to the query's source. An
// error wraps ErrMalformed; then there is nothing to send.
//
// The answer holds the responder's nodes at the query's first positions,
// as many as fit in the smaller of MaxPacketSize and the query's
// MaxAnswerSize (at least one always fits: see SessionConfig). If the
// query's tree shape is not the responder's, the answer holds no entry and
// tells the initiator the responder's shape.
func (r *Responder) Answer(dst, query []byte) ([]byte, error) {
	q, err := DecodeQuery(query)
	if err != nil {
		return nil, err
	}
	t := r.tree
	a := Answer{Session: q.Session, Seq: q.Seq, Shape: t.Config(), HashSize: q.HashSize}
	start := len(dst)
	dst = appendAnswerHead(dst, &a)
	if q.Shape != a.Shape {
		return binary.AppendUvarint(dst, 0), nil
	}
	limit := min(r.cfg.MaxPacketSize, q.MaxAnswerSize) - (len(dst) - start)
	body := r.body[:0]
	n := 0
	for i := range q.Items {
		before := len(body)
		body = r.appendEntryAt(body, &q.Items[i], q.HashSize)
		if uvarintLen(uint64(n+1))+len(body) > limit {
			body = body[:before]
			break
		}
		n++
	}
	r.body = body
	dst = binary.AppendUvarint(dst, uint64(n))
	return append(dst, body...), nil
}

// appendEntryAt appends the encoding of the tree's node at it.Pos.
func (r *Responder) appendEntryAt(dst []byte, it *QueryItem, hashSize int) []byte {
	t := r.tree
	t.settle()
	p := it.Pos
	n, level := t.locate(p)
	if it.Hash != nil {
		h := EmptyHash
		if n != nil {
			h = t.HashAt(p)
		}
		if string(h[:hashSize]) == string(it.Hash) {
			return append(dst, byte(EntryEqual))
		}
	}
	if n != nil && level == p.Level && !n.isLeaf() {
		dst = append(dst, byte(EntryInner))
		at := len(dst)
		dst = append(dst, make([]byte, bitmapSize(t.b))...)
		for i, c := range n.inner.children {
			if c != nil {
				dst[at+i/8] |= 1 << (i % 8)
			}
		}
		for _, c := range n.inner.children {
			if c != nil {
				dst = append(dst, c.hash[:hashSize]...)
			}
		}
		return dst
	}
	skip := leafSkip(p.Level, t.b)
	dst = append(dst, byte(EntryLeaf), byte(skip))
	if n == nil {
		return append(dst, 0)
	}
	var buf [MaxLeafSize]ID
	ids := t.leafIDsAt(buf[:0], n, p)
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for i := range ids {
		dst = append(dst, ids[i][skip:]...)
	}
	return dst
}
