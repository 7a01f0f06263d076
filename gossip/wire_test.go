package gossip

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/wire"
)

func testOrigin(b byte) NodeID {
	var id NodeID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func TestPullRequestRoundTrip(t *testing.T) {
	req := &PullRequest{PartitionBits: 2, Partition: 3, Origins: []OriginRanges{
		{Origin: TagOf(testOrigin(1)), Ranges: []SeqRange{{5, 10}, {12, 13}, {1 << 50, 1<<50 + 7}}},
		{Origin: TagOf(testOrigin(2)), Ranges: []SeqRange{{0, 1}}},
	}}
	b := AppendPullRequest(nil, req)
	require.Equal(t, []byte{'H', 'S', 1, byte(wire.Pull)}, b[:4])
	got, err := DecodePullRequest(b)
	require.NoError(t, err)
	require.Equal(t, req, got)
	size := wire.HeaderSize + 2 + 1
	for i := range req.Origins {
		size += originRangesSize(&req.Origins[i])
	}
	require.Equal(t, size, len(b), "originRangesSize matches the encoding")
}

func TestPullRequestByteLayout(t *testing.T) {
	req := &PullRequest{Origins: []OriginRanges{{Origin: 0x0102030405060708, Ranges: []SeqRange{{300, 302}, {303, 304}}}}}
	want := []byte{'H', 'S', 1, 0x01, 0, 0, 1}
	want = append(want, 1, 2, 3, 4, 5, 6, 7, 8)
	want = append(want, 2, 0xac, 0x02, 2, 1, 1) // 2 ranges; first 300 (varint ac 02), length 2; gap 1, length 1
	require.Equal(t, want, AppendPullRequest(nil, req))
}

func TestDecodePullRequestRejects(t *testing.T) {
	good := AppendPullRequest(nil, &PullRequest{Origins: []OriginRanges{{Origin: TagOf(testOrigin(1)), Ranges: []SeqRange{{1, 2}, {4, 9}}}}})
	for name, b := range map[string][]byte{
		"empty":          {},
		"short header":   {'H', 'S', 1},
		"bad magic":      {'X', 'S', 1, 1, 0, 0, 0},
		"bad version":    {'H', 'S', 9, 1, 0, 0, 0},
		"wrong type":     {'H', 'S', 1, 2, 0, 0, 0},
		"no body":        {'H', 'S', 1, 1},
		"partition bits": {'H', 'S', 1, 1, 9, 0, 0},
		"partition >= n": {'H', 'S', 1, 1, 1, 2, 0},
		"huge count":     {'H', 'S', 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte(nil), good...), 0),
		"zero ranges":    append(append([]byte{'H', 'S', 1, 1, 0, 0, 1}, 1, 2, 3, 4, 5, 6, 7, 8), 0, 0, 0),
		"zero length":    append(append([]byte{'H', 'S', 1, 1, 0, 0, 1}, []byte{1, 2, 3, 4, 5, 6, 7, 8}...), 1, 5, 0),
		"adjacent":       append(append([]byte{'H', 'S', 1, 1, 0, 0, 1}, []byte{1, 2, 3, 4, 5, 6, 7, 8}...), 2, 5, 1, 0, 1),
		"long varint":    {'H', 'S', 1, 1, 0, 0, 0x80, 0x00},
		"overflow":       append(append([]byte{'H', 'S', 1, 1, 0, 0, 1}, []byte{1, 2, 3, 4, 5, 6, 7, 8}...), 1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 5),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodePullRequest(b)
			require.Error(t, err)
		})
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	b := wire.AppendHeader(nil, wire.Messages)
	b = appendMessage(b, testOrigin(7), 42, 1_700_000_000_123, "orders.created", []byte("hello"))
	b = appendMessage(b, testOrigin(8), math.MaxUint64-1, 1, "a", nil)
	ms, err := DecodeMessages(b)
	require.NoError(t, err)
	require.Len(t, ms, 2)
	require.Equal(t, testOrigin(7), ms[0].Origin)
	require.Equal(t, uint64(42), ms[0].Seq)
	require.Equal(t, int64(1_700_000_000_123), ms[0].Created.UnixMilli())
	require.Equal(t, "orders.created", ms[0].Topic)
	require.Equal(t, []byte("hello"), ms[0].Payload)
	require.Equal(t, ComputeMessageID(testOrigin(7), 42, 1_700_000_000_123, "orders.created", []byte("hello")), ms[0].ID)
	require.Equal(t, "a", ms[1].Topic)
	require.Empty(t, ms[1].Payload)
	require.Equal(t, EncodedMessageSize(42, 1_700_000_000_123, len("orders.created"), 5)+
		EncodedMessageSize(math.MaxUint64-1, 1, 1, 0), len(b)-wire.HeaderSize)
}

func TestDecodeMessagesRejects(t *testing.T) {
	one := appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(1), 1, 1000, "t", []byte("abc"))
	for name, b := range map[string][]byte{
		"no messages":   wire.AppendHeader(nil, wire.Messages),
		"truncated":     one[:len(one)-1],
		"trailing byte": append(append([]byte(nil), one...), 1),
		"bad topic":     appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(1), 1, 1000, "a..b", nil),
		"wildcard":      appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(1), 1, 1000, "a.*", nil),
		"zero created":  appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(1), 1, 0, "a", nil),
		"max seq":       appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(1), math.MaxUint64, 10, "a", nil),
		"pull type":     AppendPullRequest(nil, &PullRequest{}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeMessages(b)
			require.Error(t, err)
		})
	}
}

func TestValidateTopic(t *testing.T) {
	for _, ok := range []string{"a", "orders.created", "A-b_c:d.0", string(bytes.Repeat([]byte("a"), 255))} {
		require.NoError(t, ValidateTopic(ok), ok)
	}
	for _, bad := range []string{"", ".", "a.", ".a", "a..b", "a b", "a.*", "a.>", "é", string(bytes.Repeat([]byte("a"), 256))} {
		require.ErrorIs(t, ValidateTopic(bad), ErrInvalidTopic, bad)
	}
}

func TestIDsParse(t *testing.T) {
	id := ComputeMessageID(testOrigin(1), 1, 1, "a", nil)
	got, err := ParseMessageID(id.String())
	require.NoError(t, err)
	require.Equal(t, id, got)
	_, err = ParseMessageID("zz")
	require.Error(t, err)
	n, err := ParseNodeID(testOrigin(3).String())
	require.NoError(t, err)
	require.Equal(t, testOrigin(3), n)
	_, err = ParseNodeID("0123456789abcdef0123456789abcdeg")
	require.Error(t, err)
}

// Fuzz targets: decoders must never panic, and whatever decodes must encode
// back to the same bytes.

func FuzzDecodePullRequest(f *testing.F) {
	f.Add(AppendPullRequest(nil, &PullRequest{}))
	f.Add(AppendPullRequest(nil, &PullRequest{PartitionBits: 3, Partition: 5, Origins: []OriginRanges{
		{Origin: TagOf(testOrigin(1)), Ranges: []SeqRange{{1, 5}, {9, 10}}},
		{Origin: TagOf(testOrigin(9)), Ranges: []SeqRange{{1 << 60, 1<<60 + 1}}},
	}}))
	f.Add([]byte{'H', 'S', 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(AppendPullRequest(nil, &PullRequest{Origins: []OriginRanges{{Origin: 3, Ranges: []SeqRange{{2, 4}}}},
		LongPoll: LongPoll{Park: 400 * time.Millisecond, Eager: 66 * time.Millisecond}}))
	f.Add(AppendPullRequest(nil, &PullRequest{LongPoll: LongPoll{Park: MaxLongPoll, Eager: MaxLongPoll}}))
	f.Add(AppendPullRequest(nil, &PullRequest{Origins: []OriginRanges{{Origin: 3, Ranges: []SeqRange{{2, 4}}}},
		LongPoll: LongPoll{Park: time.Second, Eager: time.Second}, Statements: true}))
	f.Add(AppendPullRequest(nil, &PullRequest{Statements: true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodePullRequest(b)
		if err != nil {
			return
		}
		require.Equal(t, b, AppendPullRequest(nil, r))
	})
}

func FuzzDecodeMessages(f *testing.F) {
	f.Add(appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(1), 1, 1000, "orders.created", []byte("x")))
	two := appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(1), 1<<40, 1_700_000_000_000, "a.b", nil)
	f.Add(appendMessage(two, testOrigin(2), 3, 5, "c", bytes.Repeat([]byte{7}, 300)))
	f.Add([]byte{'H', 'S', 1, 2})
	chunks := newChunkSet(testOrigin(3), 1<<40, 1_700_000_000_000, "big.file", bytes.Repeat([]byte{9}, 300), 3)
	f.Add(append(wire.AppendHeader(nil, wire.Messages), append(chunks.enc(0, nil), chunks.enc(2, nil)...)...))
	f.Add(appendMessage(chunks.datagram(1, nil), testOrigin(4), 9, 5, "small", []byte("x")))
	f.Add(appendStatement(appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(5), 9, 5, "t", nil),
		testKey(), testOrigin(5), 10, 5, 1, make([]byte, 32), true))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := DecodeMessages(b)
		if err != nil {
			return
		}
		out := wire.AppendHeader(nil, wire.Messages)
		body := b[wire.HeaderSize:]
		for len(body) > 0 {
			wm, rest, err := decodeMessage(body)
			require.NoError(t, err)
			body = rest
			if wm.isStatement() {
				// Not an application message: DecodeMessages leaves it out.
				s := wm.stmt
				out = appendStatementFields(out, wm.origin, wm.seq, wm.created, s.n, s.hash, s.pub, s.sig)
				continue
			}
			m := ms[0]
			ms = ms[1:]
			if wm.chunk.count == 0 {
				out = appendMessage(out, m.Origin, m.Seq, m.Created.UnixMilli(), m.Topic, m.Payload)
				continue
			}
			h := wm.chunk
			require.Equal(t, hashChunkID(wm.raw), m.ID)
			require.Len(t, m.Payload, h.length())
			require.LessOrEqual(t, h.offset()+h.length(), h.total)
			out = appendChunk(out, m.Origin, m.Seq, m.Created.UnixMilli(), m.Topic, &h, m.Payload)
		}
		require.Equal(t, b, out)
		require.Empty(t, ms)
	})
}

// FuzzDecodeChunkHeader: whatever header decodes is one a publisher could
// have cut, and encodes back to the same bytes.
func FuzzDecodeChunkHeader(f *testing.F) {
	s := newChunkSet(testOrigin(3), 1<<40, 1_700_000_000_000, "t", bytes.Repeat([]byte{9}, 1000), 4)
	for i := 0; i < 4; i++ {
		enc := s.enc(i, nil)
		f.Add(enc[16+6+6+3+1:], s.first+uint64(i)) // from the whole ID on
	}
	f.Add(append(make([]byte, 16), 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0x80, 0x80, 0x80, 0x04), uint64(5))
	f.Fuzz(func(t *testing.T, b []byte, seq uint64) {
		h, rest, err := decodeChunkHeader(b, seq)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, h.count, 2)
		require.Less(t, h.index, h.count)
		require.LessOrEqual(t, h.total, MaxChunkedSize)
		require.GreaterOrEqual(t, h.size(), MinChunkSize)
		require.GreaterOrEqual(t, h.length(), 1)
		require.LessOrEqual(t, h.length(), h.size())
		require.LessOrEqual(t, h.offset()+h.length(), h.total)
		require.GreaterOrEqual(t, seq, uint64(h.index))
		require.Less(t, seq-uint64(h.index)+uint64(h.count-1), uint64(math.MaxUint64))
		enc := append(h.whole[:0:0], h.whole[:]...)
		enc = binary.AppendUvarint(enc, uint64(h.count))
		enc = binary.AppendUvarint(enc, uint64(h.index))
		enc = binary.AppendUvarint(enc, uint64(h.total))
		require.Equal(t, b[:len(b)-len(rest)], enc)
	})
}

// The example in docs/protocol.md, byte for byte.
func TestMessageByteLayout(t *testing.T) {
	var o NodeID
	for i := range o {
		o[i] = byte(i)
	}
	want := []byte{0x48, 0x53, 0x01, 0x02,
		0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
		0x2a,
		0xfb, 0xd0, 0x95, 0xff, 0xbc, 0x31,
		0x03, 0x61, 0x2e, 0x62,
		0x02, 0x68, 0x69}
	require.Equal(t, want, appendMessage(wire.AppendHeader(nil, wire.Messages), o, 42, 1_700_000_000_123, "a.b", []byte("hi")))
}

func TestFetchRoundTrip(t *testing.T) {
	ids := []MessageID{{1}, {2, 3}, {0xff}}
	b := AppendFetch(nil, ids)
	require.Equal(t, wire.HeaderSize+1+48, len(b))
	got, err := DecodeFetch(nil, b)
	require.NoError(t, err)
	require.Equal(t, ids, got)
	for name, bad := range map[string][]byte{
		"empty":     AppendFetch(nil, nil),
		"short":     b[:len(b)-1],
		"long":      append(append([]byte(nil), b...), 0),
		"count":     {'H', 'S', 1, 3, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"wrong":     wire.AppendHeader(nil, wire.Pull),
		"long vint": append([]byte{'H', 'S', 1, 3, 0x83, 0x00}, make([]byte, 48)...),
	} {
		_, err := DecodeFetch(nil, bad)
		require.Error(t, err, name)
	}
	require.Equal(t, 87, MaxFetchIDs(1400))
	require.LessOrEqual(t, len(AppendFetch(nil, make([]MessageID, MaxFetchIDs(1400)))), 1400)
}

func FuzzDecodeFetch(f *testing.F) {
	f.Add(AppendFetch(nil, []MessageID{{1}, {2}}))
	f.Add([]byte{'H', 'S', 1, 3, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := DecodeFetch(nil, b)
		if err != nil {
			return
		}
		require.Equal(t, b, AppendFetch(nil, ids))
	})
}
