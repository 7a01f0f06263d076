package merkle

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/hearsay-io/hearsay/wire"
)

// Wire format v2 of anti-entropy (types wire.AEQueryV2 and wire.AEAnswerV2);
// docs/anti-entropy.md describes it byte by byte. Where v1 descends a level
// per round trip with a hash per child, v2 compares many cells at once by
// short checks (a slice of their SHA-256) and answers the cells that differ
// with their summaries, which name a lone differing ID outright.

// Limits of wire format v2.
const (
	MinCheckSize     = 1 // bytes of a cell's check on the wire
	MaxCheckSize     = 8
	DefaultCheckSize = 2 // a differing cell goes unseen with odds 2^-16; the final root check catches it
)

// ProbeKind says what a ProbeItem asks for.
type ProbeKind uint8

// Kinds of ProbeItem.
const (
	// ProbeRoot: "here is my root hash; if yours differs, send your root
	// hash, your count and the checks of your cells Depth levels down".
	ProbeRoot ProbeKind = 0
	// ProbeCells: "here are the checks of my cells Depth levels below Pos;
	// tell me which of yours differ".
	ProbeCells ProbeKind = 1
	// ProbeSummaries: as ProbeCells, and send the summaries of the cells
	// that differ.
	ProbeSummaries ProbeKind = 2
	// ProbeIDs: "send your IDs under Pos" (or their summary, if more than
	// LeafSize).
	ProbeIDs ProbeKind = 3
)

// QueryV2 is the body of a wire.AEQueryV2 datagram. Like Query, it carries
// all the responder needs: the responder keeps nothing.
type QueryV2 struct {
	Session uint32
	Seq     uint64
	Shape   TreeConfig
	// HashSize is the number of bytes of the root hashes, as in v1.
	HashSize int
	// CheckSize and CheckOffset say which bytes of a cell's SHA-256 are
	// its check: [CheckOffset, CheckOffset+CheckSize). The session draws
	// the offset at random, so that two cells whose checks collide in one
	// session do not in the next.
	CheckSize, CheckOffset int
	MaxAnswerSize          int
	Items                  []ProbeItem
}

// ProbeItem is one question of a QueryV2.
type ProbeItem struct {
	Kind ProbeKind
	Pos  Position
	// Depth (ProbeRoot, ProbeCells, ProbeSummaries): the cells are the
	// 2^(b·Depth) subtrees Depth levels below Pos, in prefix order.
	Depth int
	// Hash (ProbeRoot): the initiator's root hash, HashSize bytes.
	Hash []byte
	// Checks (ProbeCells, ProbeSummaries): the initiator's check of each
	// cell, CheckSize bytes each, in cell order.
	Checks []byte
}

// ReportKind says what a Report holds.
type ReportKind uint8

// Kinds of Report.
const (
	ReportEqual    ReportKind = 0 // ProbeRoot: the roots agree
	ReportOverview ReportKind = 1 // ProbeRoot: the responder's root hash, count and cell checks
	ReportIDs      ReportKind = 2 // ProbeIDs: the responder's IDs under the position
	ReportSummary  ReportKind = 3 // ProbeIDs: more than LeafSize IDs; their summary
	ReportCells    ReportKind = 4 // ProbeCells, ProbeSummaries: which cells differ, and summaries
)

// Summary is a cell's digest on the wire: how many IDs it holds, their XOR
// and the XOR of their mixes (16 bits of it: a cell holding several
// differences passes for one holding one only if that one ID also lies
// under the cell's prefix and, if it is the peer's, is absent here, or, if
// ours, is present; and the final check catches what still slips by).
type Summary struct {
	Count uint64
	// XOR of the IDs. Its first Skip bytes are not sent: they are the
	// position's prefix if Count is odd, zero if even (decoded: zero).
	XOR ID
	// Check is sent for a Count of 2 or more; a single ID is its own.
	Check uint16
}

// AnswerV2 is the body of a wire.AEAnswerV2 datagram: a Report for each of
// the query's first len(Entries) items.
type AnswerV2 struct {
	Session   uint32
	Seq       uint64
	Shape     TreeConfig
	HashSize  int
	CheckSize int
	Entries   []Report
}

// Report answers one ProbeItem. Byte slices alias the datagram.
type Report struct {
	Kind  ReportKind
	Depth int   // Overview, Cells
	Skip  uint8 // IDs, Summary, Cells: leading bytes of each ID (XOR) not sent
	// Overview: the responder's root hash (HashSize bytes), its number of
	// IDs, and its cells' checks (CheckSize bytes each, in cell order).
	Hash   []byte
	Count  uint64
	Checks []byte
	// Cells: bit i of Bitmap (bit i%8 of byte i/8) is set if cell i
	// differs; Summaries are those of the first len(Summaries) cells set,
	// in order (the rest did not fit: ask again). Summary: exactly one.
	Bitmap    []byte
	Summaries []Summary
	// IDs: the last 16-Skip bytes of each ID, ascending, as in v1's LEAF.
	Data []byte
}

// LeafLen returns the number of IDs of a ReportIDs.
func (r *Report) LeafLen() int { return len(r.Data) / (16 - int(r.Skip)) }

// LeafID returns the i-th ID of a ReportIDs, completed with prefix.
func (r *Report) LeafID(i int, prefix ID) ID {
	w := 16 - int(r.Skip)
	copy(prefix[r.Skip:], r.Data[i*w:(i+1)*w])
	return prefix
}

func cellCount(fanoutBits, depth int) int { return 1 << (fanoutBits * depth) }

func cellBitmapSize(fanoutBits, depth int) int { return (cellCount(fanoutBits, depth) + 7) / 8 }

// overviewSize is the size of a ReportOverview, at most.
func overviewSize(fanoutBits, depth, hashSize, checkSize int) int {
	return 2 + hashSize + 10 + cellCount(fanoutBits, depth)*checkSize
}

// Sizes of the fixed parts of v2 datagrams, at most.
const (
	maxQueryV2Head  = wire.HeaderSize + 4 + 10 + 5 + 3 + 3 // ... seq, shape, sizes, max answer, item count
	maxAnswerV2Head = wire.HeaderSize + 4 + 10 + 4 + 3     // ... seq, shape, sizes, entry count
)

func appendQueryV2Head(dst []byte, q *QueryV2) []byte {
	dst = wire.AppendHeader(dst, wire.AEQueryV2)
	dst = binary.BigEndian.AppendUint32(dst, q.Session)
	dst = binary.AppendUvarint(dst, q.Seq)
	dst = append(dst, byte(q.Shape.FanoutBits), byte(q.Shape.LeafSize), byte(q.HashSize), byte(q.CheckSize), byte(q.CheckOffset))
	return binary.AppendUvarint(dst, uint64(q.MaxAnswerSize))
}

func appendProbeItem(dst []byte, it *ProbeItem, fanoutBits int) []byte {
	dst = binary.AppendUvarint(dst, uint64(it.Pos.Level)<<2|uint64(it.Kind))
	dst = append(dst, it.Pos.Prefix[:prefixSize(it.Pos.Level, fanoutBits)]...)
	switch it.Kind {
	case ProbeRoot:
		dst = append(dst, byte(it.Depth))
		dst = append(dst, it.Hash...)
	case ProbeCells, ProbeSummaries:
		dst = append(dst, byte(it.Depth))
		dst = append(dst, it.Checks...)
	}
	return dst
}

func probeItemSize(it *ProbeItem, fanoutBits int) int {
	return uvarintLen(uint64(it.Pos.Level)<<2|3) + prefixSize(it.Pos.Level, fanoutBits) + 1 + len(it.Hash) + len(it.Checks)
}

// AppendQueryV2 appends a whole wire.AEQueryV2 datagram (header included).
func AppendQueryV2(dst []byte, q *QueryV2) []byte {
	dst = appendQueryV2Head(dst, q)
	dst = binary.AppendUvarint(dst, uint64(len(q.Items)))
	for i := range q.Items {
		it := q.Items[i]
		it.Pos.Prefix = maskBits(it.Pos.Prefix, it.Pos.Level*q.Shape.FanoutBits)
		dst = appendProbeItem(dst, &it, q.Shape.FanoutBits)
	}
	return dst
}

// decodeV2Sizes reads the shape and sizes both v2 heads share.
func decodeV2Sizes(b []byte, withOffset bool) (shape TreeConfig, hashSize, checkSize, offset int, rest []byte, err error) {
	n := 4
	if withOffset {
		n = 5
	}
	if len(b) < n {
		return shape, 0, 0, 0, nil, fmt.Errorf("%w: truncated head", ErrMalformed)
	}
	shape = TreeConfig{FanoutBits: int(b[0]), LeafSize: int(b[1])}
	hashSize, checkSize = int(b[2]), int(b[3])
	if withOffset {
		offset = int(b[4])
	}
	if err := shape.validate(); err != nil {
		return shape, 0, 0, 0, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch {
	case hashSize < MinHashSize || hashSize > MaxHashSize:
		return shape, 0, 0, 0, nil, fmt.Errorf("%w: hash size %d", ErrMalformed, hashSize)
	case checkSize < MinCheckSize || checkSize > MaxCheckSize:
		return shape, 0, 0, 0, nil, fmt.Errorf("%w: check size %d", ErrMalformed, checkSize)
	case offset+checkSize > 32:
		return shape, 0, 0, 0, nil, fmt.Errorf("%w: check offset %d", ErrMalformed, offset)
	}
	return shape, hashSize, checkSize, offset, b[n:], nil
}

// DecodeQueryV2 decodes the body of a wire.AEQueryV2 datagram. Hashes and
// checks alias body. It allocates at most in proportion to len(body).
func DecodeQueryV2(body []byte) (*QueryV2, error) {
	q := &QueryV2{}
	session, seq, b, err := readSessionSeq(body)
	if err != nil {
		return nil, err
	}
	q.Session, q.Seq = session, seq
	if q.Shape, q.HashSize, q.CheckSize, q.CheckOffset, b, err = decodeV2Sizes(b, true); err != nil {
		return nil, err
	}
	var maxAnswer, count uint64
	if maxAnswer, b, err = readUvarint(b); err != nil {
		return nil, err
	}
	if maxAnswer < wire.MinPacketSize || maxAnswer > wire.MaxUDPPayload {
		return nil, fmt.Errorf("%w: max answer size %d", ErrMalformed, maxAnswer)
	}
	q.MaxAnswerSize = int(maxAnswer)
	if count, b, err = readUvarint(b); err != nil {
		return nil, err
	}
	if count == 0 || count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d items in %d bytes", ErrMalformed, count, len(b))
	}
	q.Items = make([]ProbeItem, count)
	for i := range q.Items {
		if b, err = decodeProbeItem(&q.Items[i], b, q); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	return q, nil
}

func decodeProbeItem(it *ProbeItem, b []byte, q *QueryV2) ([]byte, error) {
	fb := q.Shape.FanoutBits
	v, b, err := readUvarint(b)
	if err != nil {
		return nil, err
	}
	it.Kind = ProbeKind(v & 3)
	level := v >> 2
	if level > uint64(maxLevel(fb)) {
		return nil, fmt.Errorf("%w: level %d below the deepest", ErrMalformed, level)
	}
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
	if it.Kind == ProbeIDs {
		return b, nil
	}
	if len(b) < 1 {
		return nil, fmt.Errorf("%w: truncated depth", ErrMalformed)
	}
	it.Depth, b = int(b[0]), b[1:]
	if fb*it.Depth > maxCellBits {
		return nil, fmt.Errorf("%w: depth %d", ErrMalformed, it.Depth)
	}
	if it.Kind == ProbeRoot {
		switch {
		case it.Pos.Level != 0:
			return nil, fmt.Errorf("%w: root probe at level %d", ErrMalformed, it.Pos.Level)
		case it.Depth > expandLimit(fb):
			return nil, fmt.Errorf("%w: overview depth %d", ErrMalformed, it.Depth)
		case maxAnswerV2Head+overviewSize(fb, it.Depth, q.HashSize, q.CheckSize) > q.MaxAnswerSize:
			return nil, fmt.Errorf("%w: overview of depth %d does not fit %d bytes", ErrMalformed, it.Depth, q.MaxAnswerSize)
		case len(b) < q.HashSize:
			return nil, fmt.Errorf("%w: truncated hash", ErrMalformed)
		}
		it.Hash, b = b[:q.HashSize:q.HashSize], b[q.HashSize:]
		return b, nil
	}
	if it.Pos.Level+it.Depth > expandLimit(fb) {
		return nil, fmt.Errorf("%w: cells below level %d", ErrMalformed, expandLimit(fb))
	}
	n = cellCount(fb, it.Depth) * q.CheckSize
	if len(b) < n {
		return nil, fmt.Errorf("%w: truncated checks", ErrMalformed)
	}
	it.Checks, b = b[:n:n], b[n:]
	return b, nil
}

func appendAnswerV2Head(dst []byte, a *AnswerV2) []byte {
	dst = wire.AppendHeader(dst, wire.AEAnswerV2)
	dst = binary.BigEndian.AppendUint32(dst, a.Session)
	dst = binary.AppendUvarint(dst, a.Seq)
	return append(dst, byte(a.Shape.FanoutBits), byte(a.Shape.LeafSize), byte(a.HashSize), byte(a.CheckSize))
}

func appendSummary(dst []byte, s *Summary, skip int) []byte {
	dst = binary.AppendUvarint(dst, s.Count)
	if s.Count >= 1 {
		dst = append(dst, s.XOR[skip:]...)
	}
	if s.Count >= 2 {
		dst = binary.BigEndian.AppendUint16(dst, s.Check)
	}
	return dst
}

func appendReport(dst []byte, r *Report) []byte {
	dst = append(dst, byte(r.Kind))
	switch r.Kind {
	case ReportOverview:
		dst = append(dst, byte(r.Depth))
		dst = append(dst, r.Hash...)
		dst = binary.AppendUvarint(dst, r.Count)
		dst = append(dst, r.Checks...)
	case ReportIDs:
		dst = append(dst, r.Skip)
		dst = binary.AppendUvarint(dst, uint64(r.LeafLen()))
		dst = append(dst, r.Data...)
	case ReportSummary:
		dst = append(dst, r.Skip)
		dst = appendSummary(dst, &r.Summaries[0], int(r.Skip))
	case ReportCells:
		dst = append(dst, byte(r.Depth), r.Skip)
		dst = append(dst, r.Bitmap...)
		dst = binary.AppendUvarint(dst, uint64(len(r.Summaries)))
		for i := range r.Summaries {
			dst = appendSummary(dst, &r.Summaries[i], int(r.Skip))
		}
	}
	return dst
}

// AppendAnswerV2 appends a whole wire.AEAnswerV2 datagram (header included).
func AppendAnswerV2(dst []byte, a *AnswerV2) []byte {
	dst = appendAnswerV2Head(dst, a)
	dst = binary.AppendUvarint(dst, uint64(len(a.Entries)))
	for i := range a.Entries {
		dst = appendReport(dst, &a.Entries[i])
	}
	return dst
}

// DecodeAnswerV2 decodes the body of a wire.AEAnswerV2 datagram. Reports
// alias body. It allocates at most in proportion to len(body).
func DecodeAnswerV2(body []byte) (*AnswerV2, error) {
	a := &AnswerV2{}
	session, seq, b, err := readSessionSeq(body)
	if err != nil {
		return nil, err
	}
	a.Session, a.Seq = session, seq
	if a.Shape, a.HashSize, a.CheckSize, _, b, err = decodeV2Sizes(b, false); err != nil {
		return nil, err
	}
	var count uint64
	if count, b, err = readUvarint(b); err != nil {
		return nil, err
	}
	if count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", ErrMalformed, count, len(b))
	}
	a.Entries = make([]Report, count)
	for i := range a.Entries {
		if b, err = decodeReport(&a.Entries[i], b, a); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	return a, nil
}

func decodeSkip(b []byte) (uint8, []byte, error) {
	if len(b) < 1 {
		return 0, nil, fmt.Errorf("%w: truncated skip", ErrMalformed)
	}
	if b[0] > maxSkip {
		return 0, nil, fmt.Errorf("%w: skips %d bytes", ErrMalformed, b[0])
	}
	return b[0], b[1:], nil
}

func decodeSummary(s *Summary, b []byte, skip int) ([]byte, error) {
	var err error
	if s.Count, b, err = readUvarint(b); err != nil {
		return nil, err
	}
	if s.Count >= 1 {
		n := 16 - skip
		if len(b) < n {
			return nil, fmt.Errorf("%w: truncated summary", ErrMalformed)
		}
		copy(s.XOR[skip:], b[:n])
		b = b[n:]
	}
	if s.Count >= 2 {
		if len(b) < 2 {
			return nil, fmt.Errorf("%w: truncated summary", ErrMalformed)
		}
		s.Check, b = binary.BigEndian.Uint16(b), b[2:]
	}
	return b, nil
}

func decodeReport(r *Report, b []byte, a *AnswerV2) ([]byte, error) {
	fb := a.Shape.FanoutBits
	if len(b) < 1 {
		return nil, fmt.Errorf("%w: truncated entry", ErrMalformed)
	}
	r.Kind, b = ReportKind(b[0]), b[1:]
	var err error
	switch r.Kind {
	case ReportEqual:
		return b, nil
	case ReportOverview:
		if len(b) < 1 {
			return nil, fmt.Errorf("%w: truncated overview", ErrMalformed)
		}
		r.Depth, b = int(b[0]), b[1:]
		if fb*r.Depth > maxCellBits {
			return nil, fmt.Errorf("%w: depth %d", ErrMalformed, r.Depth)
		}
		if len(b) < a.HashSize {
			return nil, fmt.Errorf("%w: truncated hash", ErrMalformed)
		}
		r.Hash, b = b[:a.HashSize:a.HashSize], b[a.HashSize:]
		if r.Count, b, err = readUvarint(b); err != nil {
			return nil, err
		}
		n := cellCount(fb, r.Depth) * a.CheckSize
		if len(b) < n {
			return nil, fmt.Errorf("%w: truncated checks", ErrMalformed)
		}
		r.Checks, b = b[:n:n], b[n:]
		return b, nil
	case ReportIDs:
		r.Skip, r.Data, b, err = decodeIDRun(b)
		return b, err
	case ReportSummary:
		if r.Skip, b, err = decodeSkip(b); err != nil {
			return nil, err
		}
		r.Summaries = make([]Summary, 1)
		return decodeSummary(&r.Summaries[0], b, int(r.Skip))
	case ReportCells:
		if len(b) < 1 {
			return nil, fmt.Errorf("%w: truncated cells", ErrMalformed)
		}
		r.Depth, b = int(b[0]), b[1:]
		if fb*r.Depth > maxCellBits {
			return nil, fmt.Errorf("%w: depth %d", ErrMalformed, r.Depth)
		}
		if r.Skip, b, err = decodeSkip(b); err != nil {
			return nil, err
		}
		n := cellBitmapSize(fb, r.Depth)
		if len(b) < n {
			return nil, fmt.Errorf("%w: truncated bitmap", ErrMalformed)
		}
		r.Bitmap, b = b[:n:n], b[n:]
		if cells := cellCount(fb, r.Depth); cells < 8 && r.Bitmap[0]>>cells != 0 {
			return nil, fmt.Errorf("%w: bitmap names cells past the last", ErrMalformed)
		}
		set := 0
		for _, x := range r.Bitmap {
			set += bits.OnesCount8(x)
		}
		var count uint64
		if count, b, err = readUvarint(b); err != nil {
			return nil, err
		}
		// A summary takes at least one byte.
		if count > uint64(set) || count > uint64(len(b)) {
			return nil, fmt.Errorf("%w: %d summaries for %d cells", ErrMalformed, count, set)
		}
		r.Summaries = make([]Summary, count)
		for i := range r.Summaries {
			if b, err = decodeSummary(&r.Summaries[i], b, int(r.Skip)); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: entry kind %d", ErrMalformed, r.Kind)
}
