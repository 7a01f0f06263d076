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
	tree  *Tree
	cfg   ResponderConfig
	body  []byte // scratch: the entries of the answer being built
	cells []cell // scratch of AnswerV2: at most 2^maxCellBits
	sums  []byte // scratch of AnswerV2
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

// AnswerV2 answers query, the body of a wire.AEQueryV2 datagram, as Answer
// does a v1 query: it appends the wire.AEAnswerV2 datagram to dst. The
// reports of the query's first items that fit go in, in order; a
// ReportCells whose summaries do not all fit carries the first ones.
func (r *Responder) AnswerV2(dst, query []byte) ([]byte, error) {
	q, err := DecodeQueryV2(query)
	if err != nil {
		return nil, err
	}
	t := r.tree
	a := AnswerV2{Session: q.Session, Seq: q.Seq, Shape: t.Config(), HashSize: q.HashSize, CheckSize: q.CheckSize}
	start := len(dst)
	dst = appendAnswerV2Head(dst, &a)
	if q.Shape != a.Shape {
		return binary.AppendUvarint(dst, 0), nil
	}
	limit := min(r.cfg.MaxPacketSize, q.MaxAnswerSize) - (len(dst) - start) - 3 // the entry count
	body := r.body[:0]
	n := 0
	for i := range q.Items {
		before := len(body)
		var ok bool
		body, ok = r.appendReport(body, q, &q.Items[i], limit-before)
		if !ok {
			body = body[:before]
			break
		}
		n++
	}
	r.body = body
	dst = binary.AppendUvarint(dst, uint64(n))
	return append(dst, body...), nil
}

// appendReport appends the report on it, in at most room bytes; false if
// it does not fit.
func (r *Responder) appendReport(dst []byte, q *QueryV2, it *ProbeItem, room int) ([]byte, bool) {
	t := r.tree
	start := len(dst)
	// fits reads dst when called: assign what is appended before calling
	// it, or the last part goes unmeasured.
	fits := func() bool { return len(dst)-start <= room }
	switch it.Kind {
	case ProbeRoot:
		root := t.Root()
		if string(root[:q.HashSize]) == string(it.Hash) {
			dst = append(dst, byte(ReportEqual))
			return dst, fits()
		}
		r.cells = t.cellsAt(it.Pos, it.Depth, growCells(r.cells, cellCount(t.b, it.Depth)))
		dst = append(dst, byte(ReportOverview), byte(it.Depth))
		dst = append(dst, root[:q.HashSize]...)
		dst = binary.AppendUvarint(dst, uint64(t.Len()))
		for i := range r.cells {
			dst = append(dst, r.cells[i].hash[q.CheckOffset:q.CheckOffset+q.CheckSize]...)
		}
		return dst, fits()
	case ProbeIDs:
		c := t.cellAt(it.Pos)
		skip := leafSkip(it.Pos.Level, t.b)
		if c.count > t.leafSize {
			s := Summary{Count: uint64(c.count), XOR: c.sum.xor, Check: uint16(c.sum.chk)}
			dst = append(dst, byte(ReportSummary), byte(skip))
			dst = appendSummary(dst, &s, skip)
			return dst, fits()
		}
		dst = append(dst, byte(ReportIDs), byte(skip))
		dst = binary.AppendUvarint(dst, uint64(c.count))
		for id := range t.IDs(it.Pos) {
			dst = append(dst, id[skip:]...)
		}
		return dst, fits()
	}
	// ProbeCells, ProbeSummaries.
	cells := cellCount(t.b, it.Depth)
	r.cells = t.cellsAt(it.Pos, it.Depth, growCells(r.cells, cells))
	skip := leafSkip(it.Pos.Level+it.Depth, t.b)
	dst = append(dst, byte(ReportCells), byte(it.Depth), byte(skip))
	at := len(dst)
	dst = append(dst, make([]byte, cellBitmapSize(t.b, it.Depth))...)
	c, o := q.CheckSize, q.CheckOffset
	for i := range r.cells {
		if string(r.cells[i].hash[o:o+c]) != string(it.Checks[i*c:(i+1)*c]) {
			dst[at+i/8] |= 1 << (i % 8)
		}
	}
	if it.Kind == ProbeCells {
		dst = append(dst, 0)
		return dst, fits()
	}
	// As many summaries as fit, in cell order.
	bitmap := dst[at:]
	sums := r.sums[:0]
	k := 0
	for i := range r.cells {
		if bitmap[i/8]&(1<<(i%8)) == 0 {
			continue
		}
		before := len(sums)
		s := Summary{Count: uint64(r.cells[i].count), XOR: r.cells[i].sum.xor, Check: uint16(r.cells[i].sum.chk)}
		sums = appendSummary(sums, &s, skip)
		if len(dst)-start+uvarintLen(uint64(k+1))+len(sums) > room {
			sums = sums[:before]
			break
		}
		k++
	}
	r.sums = sums
	dst = binary.AppendUvarint(dst, uint64(k))
	dst = append(dst, sums...)
	return dst, fits()
}

func growCells(cells []cell, n int) []cell {
	if cap(cells) < n {
		return make([]cell, n)
	}
	return cells[:n]
}
