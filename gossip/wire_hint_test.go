package gossip

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/wire"
)

func TestLongPollOptionRoundTrip(t *testing.T) {
	for _, lp := range []LongPoll{
		{Park: time.Millisecond},
		{Park: 400 * time.Millisecond},
		{Park: time.Second, Eager: time.Second},
		{Park: MaxLongPoll, Eager: 3 * time.Millisecond},
		{Park: 400 * time.Millisecond, SkipFresh: true},
		{Park: MaxLongPoll, Eager: MaxLongPoll, SkipFresh: true},
	} {
		req := &PullRequest{Origins: []OriginRanges{{Origin: TagOf(testOrigin(1)), Ranges: []SeqRange{{5, 10}}}}, LongPoll: lp}
		b := AppendPullRequest(nil, req)
		got, err := DecodePullRequest(b)
		require.NoError(t, err)
		require.Equal(t, req, got)
		require.Equal(t, wire.HeaderSize+2+1+originRangesSize(&req.Origins[0])+longPollSize(lp), len(b))
	}
}

// The examples in docs/protocol.md, byte for byte.
func TestLongPollOptionByteLayout(t *testing.T) {
	lazy := AppendPullRequest(nil, &PullRequest{LongPoll: LongPoll{Park: 400 * time.Millisecond, SkipFresh: true}})
	require.Equal(t, []byte{0x48, 0x53, 0x01, 0x01, 0x00, 0x00, 0x01,
		0x68, 0x73, 0x2e, 0x6c, 0x70, 0x6f, 0x6c, 0x6c, // "hs.lpoll"
		0x01, 0x90, 0x03, 0x02}, lazy) // one range: park 400 ms; 2 × eager 0 + skip fresh 1, + 1
	sub := AppendPullRequest(nil, &PullRequest{LongPoll: LongPoll{Park: time.Second, Eager: time.Second}})
	require.Equal(t, []byte{0xe8, 0x07, 0xd1, 0x0f}, sub[len(sub)-4:]) // 1000; 2 × 1000 + 0 + 1 = 2001
	hint := AppendHint(nil, []OriginRanges{{Origin: 0x0102030405060708, Ranges: []SeqRange{{300, 301}}}})
	require.Equal(t, []byte{0x48, 0x53, 0x01, 0x06, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x01, 0xac, 0x02, 0x01}, hint)
}

// A node that predates long-poll reads the option as one more origin
// entry, of an origin it holds nothing of: the same bytes under any other
// tag decode as that.
func TestLongPollOptionIsAnOriginEntryToOldNodes(t *testing.T) {
	lp := LongPoll{Park: 400 * time.Millisecond, Eager: 66 * time.Millisecond, SkipFresh: true}
	b := AppendPullRequest(nil, &PullRequest{Origins: []OriginRanges{{Origin: 7, Ranges: []SeqRange{{1, 3}}}}, LongPoll: lp})
	at := len(b) - longPollSize(lp)
	require.Equal(t, uint64(LongPollTag), binary.BigEndian.Uint64(b[at:]))
	binary.BigEndian.PutUint64(b[at:], 0x1122334455667788)
	got, err := DecodePullRequest(b)
	require.NoError(t, err)
	require.Zero(t, got.LongPoll)
	require.Equal(t, []OriginRanges{
		{Origin: 7, Ranges: []SeqRange{{1, 3}}},
		{Origin: 0x1122334455667788, Ranges: []SeqRange{{400, 400 + 2*66 + 1 + 1}}},
	}, got.Origins)
}

func TestDecodeLongPollOptionRejects(t *testing.T) {
	option := func(ranges ...uint64) []byte {
		b := binary.BigEndian.AppendUint64(nil, uint64(LongPollTag))
		b = binary.AppendUvarint(b, uint64(len(ranges)/2))
		for _, v := range ranges {
			b = binary.AppendUvarint(b, v)
		}
		return b
	}
	origin := append(binary.BigEndian.AppendUint64(nil, 9), 1, 1, 1)
	pull := func(entries ...[]byte) []byte {
		b := []byte{'H', 'S', 1, byte(wire.Pull), 0, 0, byte(len(entries))}
		for _, e := range entries {
			b = append(b, e...)
		}
		return b
	}
	_, err := DecodePullRequest(pull(origin, option(200, 1)))
	require.NoError(t, err, "the well-formed option, last")
	for name, b := range map[string][]byte{
		"not last":     pull(option(200, 1), origin),
		"twice":        pull(option(200, 1), option(200, 1)),
		"two ranges":   pull(option(200, 1, 1, 1)),
		"no park":      pull(option(0, 1)),
		"eager > park": pull(option(200, 2*201+1)),
		"park > 2^32":  pull(option(1<<32, 1)),
	} {
		_, err := DecodePullRequest(b)
		require.ErrorIs(t, err, wire.ErrMalformed, name)
	}
}

func TestHintRoundTripAndRejects(t *testing.T) {
	origins := []OriginRanges{
		{Origin: TagOf(testOrigin(1)), Ranges: []SeqRange{{1 << 50, 1<<50 + 3}, {1<<50 + 9, 1<<50 + 10}}},
		{Origin: TagOf(testOrigin(2)), Ranges: []SeqRange{{7, 8}}},
	}
	b := AppendHint(nil, origins)
	got, err := DecodeHint(b)
	require.NoError(t, err)
	require.Equal(t, origins, got)
	for name, bad := range map[string][]byte{
		"empty":     {'H', 'S', 1, byte(wire.Hint)},
		"no origin": {'H', 'S', 1, byte(wire.Hint), 0},
		"truncated": b[:len(b)-1],
		"trailing":  append(append([]byte(nil), b...), 0),
		"pull":      AppendPullRequest(nil, &PullRequest{Origins: origins}),
		"option":    append([]byte{'H', 'S', 1, byte(wire.Hint), 1}, AppendPullRequest(nil, &PullRequest{LongPoll: LongPoll{Park: time.Second}})[7:]...),
		"huge":      {'H', 'S', 1, byte(wire.Hint), 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		_, err := DecodeHint(bad)
		require.Error(t, err, name)
	}
}

func FuzzDecodeHint(f *testing.F) {
	f.Add(AppendHint(nil, []OriginRanges{{Origin: TagOf(testOrigin(1)), Ranges: []SeqRange{{1, 5}, {9, 10}}}}))
	f.Add(AppendHint(nil, []OriginRanges{{Origin: 1, Ranges: []SeqRange{{1 << 60, 1<<60 + 1}}}, {Origin: 2, Ranges: []SeqRange{{0, 1}}}}))
	f.Add([]byte{'H', 'S', 1, byte(wire.Hint), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		origins, err := DecodeHint(b)
		if err != nil {
			return
		}
		require.NotEmpty(t, origins)
		require.Equal(t, b, AppendHint(nil, origins))
	})
}
