package gossip

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/hearsay-io/hearsay/wire"
)

// The pull request: a digest of what the puller holds (docs/protocol.md,
// "PULL").

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
	dst = binary.AppendUvarint(dst, uint64(len(r.Origins)))
	for i := range r.Origins {
		dst = appendOriginRanges(dst, &r.Origins[i])
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
	d.ranges = d.ranges[:0]
	d.spans = d.spans[:0]
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
		d.spans = append(d.spans, [2]int{from, len(d.ranges)})
		r.Origins = append(r.Origins, o)
	}
	if len(b) != 0 {
		return nil, wire.ErrTrailingBytes
	}
	// Slice the shared ranges array only now: appends may have moved it.
	for i, sp := range d.spans {
		r.Origins[i].Ranges = d.ranges[sp[0]:sp[1]:sp[1]]
	}
	return r, nil
}
