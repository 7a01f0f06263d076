package gossip

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/hearsay-io/hearsay/wire"
)

// The pull request: a digest of what the puller holds, and the long-poll
// option that asks the peer to keep it open (docs/protocol.md, "PULL").

// SeqRange is a half-open range [First, End) of sequence numbers.
type SeqRange struct {
	First, End uint64
}

// OriginTag is the 8-byte digest key of an origin: a hash of its NodeID.
// Digests name origins by tag to halve their size; two origins share a tag
// with odds of about n²/2^65 among n active origins, and the only cost of a
// collision is a message not offered in one answer (the next pull, or
// anti-entropy, brings it).
type OriginTag uint64

// TagOf returns the digest tag of origin.
func TagOf(origin NodeID) OriginTag {
	a := binary.BigEndian.Uint64(origin[:8])
	b := binary.BigEndian.Uint64(origin[8:])
	// Mix both halves (a splitmix64 finaliser), so that IDs that differ in
	// any byte get unrelated tags and uniform partitions.
	x := a ^ (b * 0x9e3779b97f4a7c15)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return OriginTag(x)
}

// OriginRanges lists the sequence numbers a node holds from one origin:
// sorted, disjoint, non-adjacent ranges.
type OriginRanges struct {
	Origin OriginTag
	Ranges []SeqRange
}

// PullRequest is the body of a wire.Pull datagram: "send me what I lack".
//
// The origin space is split into 1<<PartitionBits partitions by the low
// bits of the origin tag; the request covers partition Partition only. Its
// digest lists, for every origin of that partition the requester knows, the
// sequence numbers it holds. The answer carries the cached messages of that
// partition outside those ranges, including all messages of origins the
// digest does not name.
type PullRequest struct {
	PartitionBits uint8 // 0..8
	Partition     uint8 // < 1<<PartitionBits
	Origins       []OriginRanges
	// LongPoll, when its Park is not zero, asks the peer to keep the pull
	// open after answering it (long-poll.go).
	LongPoll LongPoll
	// Statements announces that the puller understands statements (kind
	// 0x02, sign.go): only then may the peer send it any
	// (statement_peers.go).
	Statements bool
}

// StatementsTag is the origin tag under which a pull announces that it
// understands statements: "hs.stmts" in ASCII. Like LongPollTag, a node
// that predates it reads an origin it holds nothing of.
const StatementsTag OriginTag = 0x68732e73746d7473

// statementsVersion is the value of the option's one range: the
// statements (sign.go) the puller understands.
const statementsVersion = 1

// statementsOptionSize is the encoded size of the statements option.
const statementsOptionSize = 8 + 1 + 1 + 1

// LongPoll is the long-poll option of a pull: after answering it at once,
// the peer keeps ("parks") the pull for Park. For the first Eager of that,
// counted from the pull's arrival, it sends each message it newly accepts
// that the digest lacks, as it accepts it; after Eager, it sends a HINT
// naming the first such message instead, and forgets the pull. With
// SkipFresh, the answer at once leaves out the messages that arrived at the
// peer lately (docs/latency.md): the puller expects them from elsewhere.
// A pull may also skip fresh messages without being parked.
//
// On the wire it is one more origin entry, last, under LongPollTag: a node
// that predates it reads an origin it holds nothing of and answers the pull
// as a plain one, so old and new nodes interoperate without knowing of
// each other. Both durations travel in whole milliseconds.
type LongPoll struct {
	Park      time.Duration // up to MaxLongPoll, whole milliseconds; zero: not parked
	Eager     time.Duration // at most Park
	SkipFresh bool
}

// subscribes reports whether lp asks to be eager all along: a
// subscription (docs/latency.md).
func (lp LongPoll) subscribes() bool { return lp.Park > 0 && lp.Eager >= lp.Park }

// set reports whether lp is an option at all: a plain pull has none.
func (lp LongPoll) set() bool { return lp.Park > 0 || lp.SkipFresh }

// LongPollTag is the origin tag under which a pull carries its long-poll
// option: "hs.lpoll" in ASCII. An origin whose ID hashes to it (odds of
// 2^-64 per origin) is left out of digests (sendPull).
const LongPollTag OriginTag = 0x68732e6c706f6c6c

// MaxLongPoll bounds LongPoll.Park on the wire.
const MaxLongPoll = math.MaxUint32 * time.Millisecond

// longPollSize is the encoded size of the option entry of lp.
func longPollSize(lp LongPoll) int {
	return 8 + 1 + uvarintLen(uint64(lp.Park/time.Millisecond)) + uvarintLen(lp.flags()+1)
}

// flags is the option's second value: eager milliseconds, doubled, plus
// one if SkipFresh.
func (lp LongPoll) flags() uint64 {
	f := 2 * uint64(lp.Eager/time.Millisecond)
	if lp.SkipFresh {
		f++
	}
	return f
}

// MaxPartitionBits bounds PullRequest.PartitionBits.
const MaxPartitionBits = 8

// covers reports whether the request's partition includes origin.
func (r *PullRequest) covers(origin OriginTag) bool {
	return partitionOf(origin, r.PartitionBits) == r.Partition
}

func partitionOf(origin OriginTag, bits uint8) uint8 {
	return uint8(origin) & byte(1<<bits-1)
}

// AppendPullRequest appends a whole wire.Pull datagram (header included).
func AppendPullRequest(dst []byte, r *PullRequest) []byte {
	dst = wire.AppendHeader(dst, wire.Pull)
	dst = append(dst, r.PartitionBits, r.Partition)
	n := uint64(len(r.Origins))
	if r.LongPoll.set() {
		n++
	}
	if r.Statements {
		n++
	}
	dst = binary.AppendUvarint(dst, n)
	for i := range r.Origins {
		dst = appendOriginRanges(dst, &r.Origins[i])
	}
	if r.Statements {
		// One range: first = the version understood, length 1. Before the
		// long-poll option, which must come last.
		dst = binary.BigEndian.AppendUint64(dst, uint64(StatementsTag))
		dst = append(dst, 1, statementsVersion, 1)
	}
	if lp := r.LongPoll; lp.set() {
		// One range: first = park_ms, length = 2 × eager_ms + skip_fresh
		// + 1 (a length is at least 1, for the decoders that read it as an
		// origin).
		dst = binary.BigEndian.AppendUint64(dst, uint64(LongPollTag))
		dst = append(dst, 1)
		dst = binary.AppendUvarint(dst, uint64(lp.Park/time.Millisecond))
		dst = binary.AppendUvarint(dst, lp.flags()+1)
	}
	return dst
}

func appendOriginRanges(dst []byte, o *OriginRanges) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(o.Origin))
	dst = binary.AppendUvarint(dst, uint64(len(o.Ranges)))
	var prevEnd uint64
	for i, r := range o.Ranges {
		if i == 0 {
			dst = binary.AppendUvarint(dst, r.First)
		} else {
			dst = binary.AppendUvarint(dst, r.First-prevEnd)
		}
		dst = binary.AppendUvarint(dst, r.End-r.First)
		prevEnd = r.End
	}
	return dst
}

// originRangesSize is the encoded size of o.
func originRangesSize(o *OriginRanges) int {
	n := 8 + uvarintLen(uint64(len(o.Ranges)))
	var prevEnd uint64
	for i, r := range o.Ranges {
		if i == 0 {
			n += uvarintLen(r.First)
		} else {
			n += uvarintLen(r.First - prevEnd)
		}
		n += uvarintLen(r.End - r.First)
		prevEnd = r.End
	}
	return n
}

// DecodePullRequest decodes a whole wire.Pull datagram. It allocates at
// most in proportion to len(datagram).
func DecodePullRequest(datagram []byte) (*PullRequest, error) {
	t, body, err := wire.Parse(datagram)
	if err != nil {
		return nil, err
	}
	if t != wire.Pull {
		return nil, fmt.Errorf("%w: packet type %v, want pull", wire.ErrMalformed, t)
	}
	var d pullDecoder
	return d.decode(body)
}

// pullDecoder decodes pull requests reusing its buffers, so that the core
// answers pulls without allocating. The request it returns is valid until
// the next decode.
type pullDecoder struct {
	req    PullRequest
	ranges []SeqRange
	spans  [][2]int
}

func (d *pullDecoder) decode(b []byte) (*PullRequest, error) {
	r := &d.req
	if len(b) < 3 {
		return nil, wire.ErrTruncated
	}
	r.PartitionBits, r.Partition = b[0], b[1]
	if r.PartitionBits > MaxPartitionBits || int(r.Partition) >= 1<<r.PartitionBits {
		return nil, fmt.Errorf("%w: partition %d of 2^%d", wire.ErrMalformed, r.Partition, r.PartitionBits)
	}
	count, b, err := readUvarint(b[2:])
	if err != nil {
		return nil, err
	}
	// An origin takes at least 11 bytes: tag, range count, first, length.
	if count > uint64(len(b)/11) {
		return nil, fmt.Errorf("%w: %d origins in %d bytes", wire.ErrTruncated, count, len(b))
	}
	r.Origins = r.Origins[:0]
	r.LongPoll = LongPoll{}
	r.Statements = false
	d.ranges = d.ranges[:0]
	d.spans = d.spans[:0]
	if b, err = d.decodeOrigins(b, count, r); err != nil {
		return nil, err
	}
	if len(b) != 0 {
		return nil, wire.ErrTrailingBytes
	}
	d.slice()
	return r, nil
}

// decodeOrigins decodes count origin entries into d.req.Origins (their
// ranges sliced by d.slice) and returns the rest of b. With opts non-nil
// (a pull), an entry under LongPollTag is the long-poll option, decoded
// into opts.LongPoll: it must come last; one under StatementsTag is the
// statements option, once at most, after every origin. With opts nil (a
// hint), either is malformed. (A later version of statements would take
// another tag, so that a puller announces each it speaks.)
func (d *pullDecoder) decodeOrigins(b []byte, count uint64, opts *PullRequest) ([]byte, error) {
	r := &d.req
	var err error
	var lp *LongPoll
	if opts != nil {
		lp = &opts.LongPoll
	}
	seenStatements := false
	for i := uint64(0); i < count; i++ {
		var o OriginRanges
		if len(b) < 8 {
			return nil, wire.ErrTruncated
		}
		o.Origin = OriginTag(binary.BigEndian.Uint64(b))
		var n uint64
		if n, b, err = readUvarint(b[8:]); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: origin %016x with no ranges", wire.ErrMalformed, uint64(o.Origin))
		}
		if n > uint64(len(b)/2) {
			return nil, fmt.Errorf("%w: %d ranges in %d bytes", wire.ErrTruncated, n, len(b))
		}
		from := len(d.ranges)
		var prevEnd uint64
		for j := uint64(0); j < n; j++ {
			var first, length uint64
			if first, b, err = readUvarint(b); err != nil {
				return nil, err
			}
			if j > 0 {
				if first == 0 {
					return nil, fmt.Errorf("%w: adjacent ranges", wire.ErrMalformed)
				}
				if prevEnd > math.MaxUint64-first {
					return nil, fmt.Errorf("%w: range overflows", wire.ErrMalformed)
				}
				first += prevEnd
			}
			if length, b, err = readUvarint(b); err != nil {
				return nil, err
			}
			if length == 0 || first > math.MaxUint64-length {
				return nil, fmt.Errorf("%w: bad range length", wire.ErrMalformed)
			}
			prevEnd = first + length
			d.ranges = append(d.ranges, SeqRange{First: first, End: prevEnd})
		}
		if o.Origin == LongPollTag {
			if lp == nil || i != count-1 || n != 1 {
				return nil, fmt.Errorf("%w: long-poll option not alone and last", wire.ErrMalformed)
			}
			opt := d.ranges[from]
			d.ranges = d.ranges[:from]
			park, flags := opt.First, opt.End-opt.First-1
			eager := flags / 2
			if park == 0 && flags != 1 || park > math.MaxUint32 || eager > park {
				return nil, fmt.Errorf("%w: long-poll %d ms, eager %d ms", wire.ErrMalformed, park, eager)
			}
			*lp = LongPoll{Park: time.Duration(park) * time.Millisecond, Eager: time.Duration(eager) * time.Millisecond, SkipFresh: flags&1 == 1}
			continue
		}
		if o.Origin == StatementsTag {
			if opts == nil || seenStatements || n != 1 || d.ranges[from] != (SeqRange{statementsVersion, statementsVersion + 1}) {
				return nil, fmt.Errorf("%w: statements option not once, or not version %d", wire.ErrMalformed, statementsVersion)
			}
			seenStatements = true
			opts.Statements = true
			d.ranges = d.ranges[:from]
			continue
		}
		if seenStatements {
			return nil, fmt.Errorf("%w: an origin after the statements option", wire.ErrMalformed)
		}
		d.spans = append(d.spans, [2]int{from, len(d.ranges)})
		r.Origins = append(r.Origins, o)
	}
	return b, nil
}

// slice points the decoded origins at their ranges. Only once every range
// is in: appends may have moved the shared array.
func (d *pullDecoder) slice() {
	for i, sp := range d.spans {
		d.req.Origins[i].Ranges = d.ranges[sp[0]:sp[1]:sp[1]]
	}
}
