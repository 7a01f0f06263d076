package merkle

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/wire"
)

func sampleQuery() *Query {
	return &Query{
		Session: 0x01020304, Seq: 300, Shape: DefaultTreeConfig(), HashSize: 8, MaxAnswerSize: 1400,
		Items: []QueryItem{
			{Pos: Position{}, Hash: bytes.Repeat([]byte{0xee}, 8)},
			{Pos: Position{Level: 2, Prefix: ID{0xb0}}},
			{Pos: Position{Level: 5, Prefix: ID{0xff, 0xfe}}},
			{Pos: Position{Level: 43, Prefix: ID{15: 0x80}}},
		},
	}
}

func sampleAnswer() *Answer {
	return &Answer{
		Session: 0x01020304, Seq: 300, Shape: DefaultTreeConfig(), HashSize: 8,
		Entries: []Entry{
			{Kind: EntryEqual},
			{Kind: EntryInner, Children: []byte{0x05}, Data: bytes.Repeat([]byte{0xab}, 16)},
			{Kind: EntryLeaf, Skip: 1, Data: slices.Concat(bytes.Repeat([]byte{0x01}, 15), bytes.Repeat([]byte{0x02}, 15))},
			{Kind: EntryLeaf, Skip: 0, Data: []byte{}},
		},
	}
}

func TestQueryRoundTrip(t *testing.T) {
	q := sampleQuery()
	b := AppendQuery(nil, q)
	require.Equal(t, []byte{'H', 'S', 1, byte(wire.AEQuery)}, b[:4])
	got, err := DecodeQuery(body(b))
	require.NoError(t, err)
	require.Equal(t, q, got)
	typ, ok := wire.TypeOf(b)
	require.True(t, ok)
	require.Equal(t, wire.AEQuery, typ)
}

// TestQueryByteLayout is the example of docs/anti-entropy.md.
func TestQueryByteLayout(t *testing.T) {
	q := &Query{
		Session: 0x01020304, Seq: 0, Shape: DefaultTreeConfig(), HashSize: 8, MaxAnswerSize: 1400,
		Items: []QueryItem{
			{Pos: Position{}, Hash: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
			{Pos: Position{Level: 3, Prefix: ID{0xa5, 0x80}}},
		},
	}
	want := []byte{
		'H', 'S', 0x01, 0x10, // header: QUERY
		0x01, 0x02, 0x03, 0x04, // session
		0x00,             // seq 0
		0x03, 0x10, 0x08, // fanout bits 3, leaf size 16, hash size 8
		0xf8, 0x0a, // max answer size 1400
		0x02,                         // two items
		0x01, 1, 2, 3, 4, 5, 6, 7, 8, // the root (level 0, hash follows), its hash
		0x06, 0xa5, 0x80, // level 3, no hash; prefix 101001011 (9 bits) in 2 bytes
	}
	require.Equal(t, want, AppendQuery(nil, q))
}

func TestAnswerRoundTrip(t *testing.T) {
	a := sampleAnswer()
	b := AppendAnswer(nil, a)
	got, err := DecodeAnswer(body(b))
	require.NoError(t, err)
	require.Equal(t, a, got)
	require.Equal(t, 2, got.Entries[2].LeafLen())
	id := got.Entries[2].LeafID(1, ID{0x77})
	require.Equal(t, ID{0x77, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, id)
}

// TestAnswerByteLayout is the example of docs/anti-entropy.md.
func TestAnswerByteLayout(t *testing.T) {
	a := &Answer{
		Session: 0x01020304, Seq: 0, Shape: DefaultTreeConfig(), HashSize: 8,
		Entries: []Entry{
			{Kind: EntryInner, Children: []byte{0x82}, Data: []byte{
				1, 1, 1, 1, 1, 1, 1, 1,
				7, 7, 7, 7, 7, 7, 7, 7,
			}},
			{Kind: EntryLeaf, Skip: 1, Data: []byte{
				0x81, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
			}},
		},
	}
	want := []byte{
		'H', 'S', 0x01, 0x11, // header: ANSWER
		0x01, 0x02, 0x03, 0x04, // session
		0x00,             // seq 0
		0x03, 0x10, 0x08, // the responder's shape, the hash size
		0x02,       // two entries
		0x01, 0x82, // inner; children 1 and 7 are not empty
		1, 1, 1, 1, 1, 1, 1, 1, // child 1's hash
		7, 7, 7, 7, 7, 7, 7, 7, // child 7's hash
		0x02, 0x01, 0x01, // leaf; first byte from the prefix; one ID
		0x81, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	}
	require.Equal(t, want, AppendAnswer(nil, a))
}

func TestIDsRoundTrip(t *testing.T) {
	ids := randomIDs(newRand(1), 10)
	b := AppendIDs([]byte{0xff}, ids)
	got, err := DecodeIDs(b[1:])
	require.NoError(t, err)
	require.Equal(t, ids, got)
	got, err = DecodeIDs([]byte{0})
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestDecodeQueryRejects(t *testing.T) {
	good := AppendQuery(nil, sampleQuery())
	head := func(b, leaf, h byte) []byte {
		return []byte{'H', 'S', 1, byte(wire.AEQuery), 0, 0, 0, 1, 0, b, leaf, h, 0xf8, 0x0a}
	}
	for name, b := range map[string][]byte{
		"empty":            {},
		"short header":     {'H', 'S', 1},
		"no body":          {'H', 'S', 1, byte(wire.AEQuery)},
		"short session":    {'H', 'S', 1, byte(wire.AEQuery), 0, 0},
		"seq overflow":     {'H', 'S', 1, byte(wire.AEQuery), 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"no shape":         {'H', 'S', 1, byte(wire.AEQuery), 0, 0, 0, 1, 0, 3},
		"fanout 0":         append(head(0, 16, 8), 1, 0),
		"fanout 9":         append(head(9, 16, 8), 1, 0),
		"leaf size 0":      append(head(3, 0, 8), 1, 0),
		"leaf size 65":     append(head(3, 65, 8), 1, 0),
		"hash size 3":      append(head(3, 16, 3), 1, 0),
		"hash size 33":     append(head(3, 16, 33), 1, 0),
		"max answer small": {'H', 'S', 1, byte(wire.AEQuery), 0, 0, 0, 1, 0, 3, 16, 8, 0x80, 0x01, 1, 0},
		"max answer huge":  {'H', 'S', 1, byte(wire.AEQuery), 0, 0, 0, 1, 0, 3, 16, 8, 0xff, 0xff, 0x7f, 1, 0},
		"no items":         append(head(3, 16, 8), 0),
		"huge count":       append(head(3, 16, 8), 0xff, 0xff, 0xff, 0xff, 0x0f, 0),
		"level too deep":   append(head(3, 16, 8), 1, 44<<1),
		"stray prefix bit": append(head(3, 16, 8), 1, 2<<1, 0xb2),
		"truncated prefix": append(head(3, 16, 8), 1, 5<<1, 0xff),
		"truncated hash":   append(head(3, 16, 8), 1, 1, 1, 2, 3),
		"truncated":        good[:len(good)-1],
		"trailing":         append(slices.Clone(good), 0),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeQuery(body(b))
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestDecodeAnswerRejects(t *testing.T) {
	good := AppendAnswer(nil, sampleAnswer())
	head := func(b, h byte, count byte) []byte {
		return []byte{'H', 'S', 1, byte(wire.AEAnswer), 0, 0, 0, 1, 0, b, 16, h, count}
	}
	for name, b := range map[string][]byte{
		"empty":             {},
		"short session":     {'H', 'S', 1, byte(wire.AEAnswer), 0},
		"no shape":          {'H', 'S', 1, byte(wire.AEAnswer), 0, 0, 0, 1, 0, 3, 16},
		"fanout 0":          head(0, 8, 0),
		"hash size 2":       head(3, 2, 0),
		"huge count":        append(head(3, 8, 0xff), 0xff, 0x7f),
		"missing entry":     head(3, 8, 1),
		"unknown kind":      append(head(3, 8, 1), 3),
		"no bitmap":         append(head(3, 8, 1), 1),
		"empty inner":       append(head(3, 8, 1), 1, 0),
		"bitmap past 2^b":   append(head(2, 8, 1), 1, 0x10, 1, 1, 1, 1, 1, 1, 1, 1),
		"truncated hashes":  append(head(3, 8, 1), 1, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 9),
		"no skip":           append(head(3, 8, 1), 2),
		"skip 16":           append(head(3, 8, 1), 2, 16, 0),
		"no leaf count":     append(head(3, 8, 1), 2, 0),
		"leaf count huge":   append(head(3, 8, 1), 2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f),
		"truncated leaf":    append(append(head(3, 8, 1), 2, 15, 2), 1),
		"unsorted leaf":     append(head(3, 8, 1), 2, 15, 2, 9, 8),
		"duplicate in leaf": append(head(3, 8, 1), 2, 15, 2, 9, 9),
		"truncated":         good[:len(good)-1],
		"trailing":          append(slices.Clone(good), 0),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeAnswer(body(b))
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestDecodeIDsRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":        {},
		"overflow":     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"huge count":   {0xff, 0xff, 0x7f},
		"short":        append([]byte{2}, make([]byte, 31)...),
		"trailing":     append([]byte{1}, make([]byte, 17)...),
		"count too lo": append([]byte{1}, make([]byte, 32)...),
	} {
		_, err := DecodeIDs(b)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
}

// The fuzz targets: every decoder, the responder and the session's Handle
// take any bytes without panicking, and what decodes re-encodes to
// something that decodes to the same.

func FuzzDecodeQuery(f *testing.F) {
	f.Add(AppendQuery(nil, sampleQuery()))
	f.Add(AppendQuery(nil, &Query{Shape: TreeConfig{FanoutBits: 1, LeafSize: 1}, HashSize: 32, MaxAnswerSize: 65507,
		Items: []QueryItem{{Pos: Position{Level: 128, Prefix: ID{0xff, 15: 0xff}}, Hash: make([]byte, 32)}}}))
	f.Add([]byte{'H', 'S', 1, byte(wire.AEQuery), 0, 0, 0, 1, 0, 3, 16, 8, 0xf8, 0x0a, 1, 0})
	f.Add([]byte{'H', 'S', 1, byte(wire.AEQuery)})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeQuery(body(b))
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.LessOrEqual(t, len(q.Items), len(b))
		again, err := DecodeQuery(body(AppendQuery(nil, q)))
		require.NoError(t, err)
		require.Equal(t, q, again)
	})
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add(AppendAnswer(nil, sampleAnswer()))
	f.Add(AppendAnswer(nil, &Answer{Shape: TreeConfig{FanoutBits: 8, LeafSize: 64}, HashSize: 4,
		Entries: []Entry{{Kind: EntryInner, Children: bytes.Repeat([]byte{0xff}, 32), Data: make([]byte, 256*4)}}}))
	f.Add(AppendAnswer(nil, &Answer{Shape: TreeConfig{FanoutBits: 1, LeafSize: 1}, HashSize: 4,
		Entries: []Entry{{Kind: EntryInner, Children: []byte{0x02}, Data: make([]byte, 4)}}}))
	f.Add([]byte{'H', 'S', 1, byte(wire.AEAnswer), 0, 0, 0, 1, 0, 3, 16, 8, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAnswer(body(b))
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.LessOrEqual(t, len(a.Entries), len(b))
		again, err := DecodeAnswer(body(AppendAnswer(nil, a)))
		require.NoError(t, err)
		require.Equal(t, a, again)
	})
}

func FuzzDecodeIDs(f *testing.F) {
	f.Add(AppendIDs(nil, randomIDs(newRand(1), 3)))
	f.Add([]byte{0})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := DecodeIDs(b)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.LessOrEqual(t, 16*len(ids), len(b))
		again, err := DecodeIDs(AppendIDs(nil, ids))
		require.NoError(t, err)
		require.Equal(t, ids, again)
	})
}

// fuzzTree is a small tree whose IDs share long prefixes, so that queries
// reach every kind of node.
func fuzzTree(t testing.TB) *Tree {
	tr, err := BuildTree(DefaultTreeConfig(), withNearTwins(randomIDs(newRand(3), 200), 20))
	require.NoError(t, err)
	return tr
}

func FuzzResponderAnswer(f *testing.F) {
	tr := fuzzTree(f)
	r := mustResponder(f, tr)
	f.Add(AppendQuery(nil, sampleQuery()))
	for _, level := range []int{0, 1, 2, 3, 10, 42, 43} {
		f.Add(AppendQuery(nil, &Query{Shape: tr.Config(), HashSize: 8, MaxAnswerSize: 512,
			Items: []QueryItem{{Pos: tr.PositionOf(figureLikeID(), level)}, {Pos: Position{Level: level}}}}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ans, err := r.Answer(nil, body(b))
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		q, err := DecodeQuery(body(b))
		require.NoError(t, err)
		require.LessOrEqual(t, len(ans), min(q.MaxAnswerSize, DefaultMaxPacketSize))
		a, err := DecodeAnswer(body(ans))
		require.NoError(t, err)
		require.LessOrEqual(t, len(a.Entries), len(q.Items))
		if q.Shape == tr.Config() {
			require.NotEmpty(t, a.Entries, "the default shape's nodes always fit")
		}
	})
}

func figureLikeID() ID { return randomIDs(newRand(3), 1)[0] }

func FuzzSessionHandle(f *testing.F) {
	tr := fuzzTree(f)
	peer := mustTree(f, DefaultTreeConfig(), randomIDs(newRand(4), 300)...)
	r := mustResponder(f, peer)
	// Seeds: the real answers of a session, in order. The target replays
	// the first, the root's, then takes the fuzzed one, so that mutations of
	// the later seeds meet queries in flight.
	s := mustSession(f, tr, SessionConfig{Rand: newRand(5)})
	now := time.Unix(0, 0)
	s.Start(now)
	var first []byte
	for !s.Done() {
		queries := s.Ready()
		if len(queries) == 0 {
			break
		}
		var answers [][]byte
		for _, q := range queries {
			a, err := r.AnswerV2(nil, body(q))
			require.NoError(f, err)
			answers = append(answers, a)
			f.Add(a)
			if first == nil {
				first = a
			}
		}
		for _, a := range answers {
			_ = s.Handle(now, body(a))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := mustSession(t, tr, SessionConfig{Rand: newRand(5)})
		s.Start(now)
		s.Ready()
		_ = s.Handle(now, body(first))
		s.Ready()
		// The same datagram twice, as a duplicate would come.
		for range 2 {
			if err := s.Handle(now, body(b)); err != nil && !s.Done() {
				require.True(t, errorsIsAny(err, ErrMalformed, ErrStaleAnswer), "%v", err)
			}
			s.Ready()
		}
		s.Tick(now.Add(time.Hour))
	})
}

func errorsIsAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// body is a datagram's body: what wire.Parse hands to the decoders and
// handlers of this package.
func body(datagram []byte) []byte { return datagram[min(len(datagram), wire.HeaderSize):] }

// FuzzSessionHandleV1 is FuzzSessionHandle for a session that fell back to
// v1 with a peer of an older release.
func FuzzSessionHandleV1(f *testing.F) {
	tr := fuzzTree(f)
	peer := mustTree(f, DefaultTreeConfig(), randomIDs(newRand(4), 300)...)
	r := mustResponder(f, peer)
	now := time.Unix(0, 0)
	// start returns a session whose v2 root query went unanswered three
	// times, and the v1 root query it then sent.
	start := func(t testing.TB) (*Session, []byte) {
		s := mustSession(t, tr, SessionConfig{Rand: newRand(5)})
		s.Start(now)
		var v1 []byte
		for i := 1; v1 == nil; i++ {
			require.Less(t, i, 10)
			s.Tick(now.Add(time.Duration(i) * DefaultRetryTimeout))
			for _, q := range s.Ready() {
				if typ, _ := wire.TypeOf(q); typ == wire.AEQuery {
					v1 = q
				}
			}
		}
		return s, v1
	}
	s, q := start(f)
	var first []byte
	queries := [][]byte{q}
	for !s.Done() && len(queries) > 0 {
		var answers [][]byte
		for _, q := range queries {
			a, err := r.Answer(nil, body(q))
			require.NoError(f, err)
			answers = append(answers, a)
			f.Add(a)
			if first == nil {
				first = a
			}
		}
		for _, a := range answers {
			_ = s.HandleV1(now, body(a))
		}
		queries = s.Ready()
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _ := start(t)
		_ = s.HandleV1(now, body(first))
		s.Ready()
		for range 2 {
			if err := s.HandleV1(now, body(b)); err != nil && !s.Done() {
				require.True(t, errorsIsAny(err, ErrMalformed, ErrStaleAnswer), "%v", err)
			}
			s.Ready()
		}
		s.Tick(now.Add(time.Hour))
	})
}
