package merkle

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/wire"
)

func sampleQueryV2() *QueryV2 {
	return &QueryV2{
		Session: 0x01020304, Seq: 300, Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, CheckOffset: 30, MaxAnswerSize: 1400,
		Items: []ProbeItem{
			{Kind: ProbeRoot, Depth: 2, Hash: bytes.Repeat([]byte{0xee}, 8)},
			{Kind: ProbeCells, Pos: Position{Level: 2, Prefix: ID{0xb0}}, Depth: 1, Checks: bytes.Repeat([]byte{0xab}, 16)},
			{Kind: ProbeSummaries, Pos: Position{Level: 5, Prefix: ID{0xff, 0xfe}}, Depth: 0, Checks: []byte{1, 2}},
			{Kind: ProbeIDs, Pos: Position{Level: 43, Prefix: ID{15: 0x80}}},
		},
	}
}

func sampleAnswerV2() *AnswerV2 {
	return &AnswerV2{
		Session: 0x01020304, Seq: 300, Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2,
		Entries: []Report{
			{Kind: ReportEqual},
			{Kind: ReportOverview, Depth: 1, Hash: bytes.Repeat([]byte{0xee}, 8), Count: 1000, Checks: bytes.Repeat([]byte{0xab}, 16)},
			{Kind: ReportIDs, Skip: 1, Data: slices.Concat(bytes.Repeat([]byte{0x01}, 15), bytes.Repeat([]byte{0x02}, 15))},
			{Kind: ReportSummary, Skip: 2, Summaries: []Summary{{Count: 40, XOR: ID{2: 7, 15: 9}, Check: 0xbeef}}},
			{Kind: ReportCells, Depth: 1, Skip: 1, Bitmap: []byte{0x81}, Summaries: []Summary{{Count: 1, XOR: ID{1: 5}}}},
			{Kind: ReportCells, Depth: 2, Bitmap: make([]byte, 8), Summaries: []Summary{}},
		},
	}
}

func TestQueryV2RoundTrip(t *testing.T) {
	q := sampleQueryV2()
	b := AppendQueryV2(nil, q)
	typ, qbody, err := wire.Parse(b)
	require.NoError(t, err)
	require.Equal(t, wire.AEQueryV2, typ)
	got, err := DecodeQueryV2(qbody)
	require.NoError(t, err)
	require.Equal(t, q, got)
}

func TestAnswerV2RoundTrip(t *testing.T) {
	a := sampleAnswerV2()
	b := AppendAnswerV2(nil, a)
	typ, abody, err := wire.Parse(b)
	require.NoError(t, err)
	require.Equal(t, wire.AEAnswerV2, typ)
	got, err := DecodeAnswerV2(abody)
	require.NoError(t, err)
	require.Equal(t, a, got)
}

// TestQueryV2ByteLayout and TestAnswerV2ByteLayout are the examples of
// docs/anti-entropy.md.
func TestQueryV2ByteLayout(t *testing.T) {
	q := &QueryV2{
		Session: 0x01020304, Seq: 1, Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, CheckOffset: 5, MaxAnswerSize: 1400,
		Items: []ProbeItem{
			{Kind: ProbeSummaries, Pos: Position{Level: 2, Prefix: ID{0xa4}}, Depth: 1, Checks: []byte{
				0x10, 0x11, 0x20, 0x21, 0x30, 0x31, 0x40, 0x41, 0x50, 0x51, 0x60, 0x61, 0x70, 0x71, 0x80, 0x81}},
			{Kind: ProbeIDs, Pos: Position{Level: 6, Prefix: ID{0xa4, 0x8c}}},
		},
	}
	want := []byte{
		0x48, 0x53, 0x01, 0x12,
		0x01, 0x02, 0x03, 0x04,
		0x01,
		0x03, 0x10, 0x08, 0x02, 0x05,
		0xf8, 0x0a,
		0x02,
		0x0a, 0xa4, 0x01,
		0x10, 0x11, 0x20, 0x21, 0x30, 0x31, 0x40, 0x41, 0x50, 0x51, 0x60, 0x61, 0x70, 0x71, 0x80, 0x81,
		0x1b, 0xa4, 0x8c, 0x00,
	}
	require.Equal(t, want, AppendQueryV2(nil, q))
	root := &QueryV2{Session: 0x01020304, Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, CheckOffset: 5, MaxAnswerSize: 1400,
		Items: []ProbeItem{{Kind: ProbeRoot, Depth: 2, Hash: []byte{1, 2, 3, 4, 5, 6, 7, 8}}}}
	require.Equal(t, []byte{
		0x48, 0x53, 0x01, 0x12, 0x01, 0x02, 0x03, 0x04, 0x00, 0x03, 0x10, 0x08, 0x02, 0x05, 0xf8, 0x0a, 0x01,
		0x00, 0x02, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	}, AppendQueryV2(nil, root))
	require.Len(t, AppendQueryV2(nil, root), 27)
}

func TestAnswerV2ByteLayout(t *testing.T) {
	a := &AnswerV2{
		Session: 0x01020304, Seq: 1, Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2,
		Entries: []Report{
			{Kind: ReportCells, Depth: 1, Skip: 1, Bitmap: []byte{0x22}, Summaries: []Summary{
				{Count: 1, XOR: ID{1: 0x51, 15: 0x0f}},
				{Count: 300, XOR: ID{1: 0x77, 15: 0xee}, Check: 0xbeef},
			}},
			{Kind: ReportIDs, Skip: 2, Data: bytes.Repeat([]byte{0x33}, 14)},
		},
	}
	want := []byte{
		0x48, 0x53, 0x01, 0x13,
		0x01, 0x02, 0x03, 0x04,
		0x01,
		0x03, 0x10, 0x08, 0x02,
		0x02,
		0x04, 0x01, 0x01, 0x22, 0x02,
		0x01, 0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0f,
		0xac, 0x02, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xee, 0xbe, 0xef,
		0x02, 0x02, 0x01, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
	}
	require.Equal(t, want, AppendAnswerV2(nil, a))
}

func TestDecodeV2RejectsMalformed(t *testing.T) {
	good := AppendQueryV2(nil, sampleQueryV2())
	for name, b := range map[string][]byte{
		"empty":            {},
		"truncated":        good[4 : len(good)-1],
		"trailing":         append(slices.Clone(good[4:]), 0),
		"bad shape":        AppendQueryV2(nil, &QueryV2{Shape: TreeConfig{FanoutBits: 9, LeafSize: 16}, HashSize: 8, CheckSize: 2, MaxAnswerSize: 1400, Items: []ProbeItem{{Kind: ProbeIDs}}})[4:],
		"check size 0":     AppendQueryV2(nil, &QueryV2{Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 0, MaxAnswerSize: 1400, Items: []ProbeItem{{Kind: ProbeIDs}}})[4:],
		"check offset":     AppendQueryV2(nil, &QueryV2{Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, CheckOffset: 31, MaxAnswerSize: 1400, Items: []ProbeItem{{Kind: ProbeIDs}}})[4:],
		"no items":         AppendQueryV2(nil, &QueryV2{Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, MaxAnswerSize: 1400})[4:],
		"root not at 0":    AppendQueryV2(nil, &QueryV2{Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, MaxAnswerSize: 1400, Items: []ProbeItem{{Kind: ProbeRoot, Pos: Position{Level: 1}, Hash: make([]byte, 8)}}})[4:],
		"overview too big": AppendQueryV2(nil, &QueryV2{Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, MaxAnswerSize: 1400, Items: []ProbeItem{{Kind: ProbeRoot, Depth: 4, Hash: make([]byte, 8)}}})[4:],
		"depth too big":    AppendQueryV2(nil, &QueryV2{Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, MaxAnswerSize: 1400, Items: []ProbeItem{{Kind: ProbeCells, Depth: 5}}})[4:],
		"cells too deep":   AppendQueryV2(nil, &QueryV2{Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, MaxAnswerSize: 1400, Items: []ProbeItem{{Kind: ProbeCells, Pos: Position{Level: 42}, Depth: 1, Checks: make([]byte, 16)}}})[4:],
		"checks short":     AppendQueryV2(nil, &QueryV2{Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, MaxAnswerSize: 1400, Items: []ProbeItem{{Kind: ProbeCells, Depth: 1, Checks: make([]byte, 15)}}})[4:],
		"max answer":       AppendQueryV2(nil, &QueryV2{Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, MaxAnswerSize: 100, Items: []ProbeItem{{Kind: ProbeIDs}}})[4:],
	} {
		_, err := DecodeQueryV2(b)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	ans := func(entries ...Report) []byte {
		return AppendAnswerV2(nil, &AnswerV2{Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, Entries: entries})[4:]
	}
	goodA := AppendAnswerV2(nil, sampleAnswerV2())
	for name, b := range map[string][]byte{
		"truncated":         goodA[4 : len(goodA)-1],
		"trailing":          append(slices.Clone(goodA[4:]), 0),
		"unknown kind":      append(ans(), 0),
		"ids not ascending": ans(Report{Kind: ReportIDs, Skip: 15, Data: []byte{2, 1}}),
		"skip 16":           ans(Report{Kind: ReportSummary, Skip: 16, Summaries: []Summary{{}}}),
		"bitmap past cells": AppendAnswerV2(nil, &AnswerV2{Shape: TreeConfig{FanoutBits: 1, LeafSize: 16}, HashSize: 8, CheckSize: 2, Entries: []Report{{Kind: ReportCells, Depth: 1, Bitmap: []byte{0x04}}}})[4:],
		"more summaries":    ans(Report{Kind: ReportCells, Depth: 1, Bitmap: []byte{0x01}, Summaries: []Summary{{}, {}}}),
		"depth too big":     ans(Report{Kind: ReportCells, Depth: 5, Bitmap: make([]byte, 4096)}),
	} {
		_, err := DecodeAnswerV2(b)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	// A count that claims more entries than bytes.
	b := slices.Clone(ans(Report{Kind: ReportEqual}))
	b[len(b)-2] = 0x7f
	_, err := DecodeAnswerV2(b)
	require.ErrorIs(t, err, ErrMalformed)
}

// TestResponderAnswersV1AndV2 checks that a node answers both versions'
// queries, each in its own version, so that a node of an older release
// still reconciles with it.
func TestResponderAnswersV1AndV2(t *testing.T) {
	tr := mustTree(t, TreeConfig{}, randomIDs(newRand(30), 500)...)
	r := mustResponder(t, tr)
	v1, err := r.Answer(nil, body(AppendQuery(nil, sampleQuery())))
	require.NoError(t, err)
	typ, ok := wire.TypeOf(v1)
	require.True(t, ok)
	require.Equal(t, wire.AEAnswer, typ)
	v2, err := r.AnswerV2(nil, body(AppendQueryV2(nil, sampleQueryV2())))
	require.NoError(t, err)
	typ, _ = wire.TypeOf(v2)
	require.Equal(t, wire.AEAnswerV2, typ)
	a, err := DecodeAnswerV2(body(v2))
	require.NoError(t, err)
	require.Len(t, a.Entries, 4)
	require.Equal(t, ReportOverview, a.Entries[0].Kind)
	require.Equal(t, uint64(500), a.Entries[0].Count)
	// Neither version's decoder takes the other's bodies.
	_, err = DecodeAnswerV2(body(v1))
	require.ErrorIs(t, err, ErrMalformed)
}

// TestResponderV2TruncatesSummaries: when the summaries of the cells that
// differ do not all fit, the report carries the first ones, and the answer
// stays within the datagram.
func TestResponderV2TruncatesSummaries(t *testing.T) {
	tr := mustTree(t, TreeConfig{}, randomIDs(newRand(31), 20_000)...)
	r, err := NewResponder(tr, ResponderConfig{MaxPacketSize: 512})
	require.NoError(t, err)
	q := &QueryV2{Shape: tr.Config(), HashSize: 8, CheckSize: 2, MaxAnswerSize: 1400,
		Items: []ProbeItem{{Kind: ProbeSummaries, Pos: Position{Level: 1}, Depth: 2, Checks: make([]byte, 128)}}}
	out, err := r.AnswerV2(nil, body(AppendQueryV2(nil, q)))
	require.NoError(t, err)
	require.LessOrEqual(t, len(out), 512)
	a, err := DecodeAnswerV2(body(out))
	require.NoError(t, err)
	require.Len(t, a.Entries, 1)
	require.Equal(t, bytes.Repeat([]byte{0xff}, 8), a.Entries[0].Bitmap)
	require.NotEmpty(t, a.Entries[0].Summaries)
	require.Less(t, len(a.Entries[0].Summaries), 64)
}

func FuzzDecodeQueryV2(f *testing.F) {
	f.Add(AppendQueryV2(nil, sampleQueryV2()))
	f.Add(AppendQueryV2(nil, &QueryV2{Shape: TreeConfig{FanoutBits: 1, LeafSize: 1}, HashSize: 32, CheckSize: 8, CheckOffset: 24, MaxAnswerSize: 65507,
		Items: []ProbeItem{{Kind: ProbeCells, Pos: Position{Level: 116}, Depth: 12, Checks: make([]byte, 8<<12)}}}))
	f.Add([]byte{'H', 'S', 1, byte(wire.AEQueryV2), 0, 0, 0, 1, 0, 3, 16, 8, 2, 0, 0xf8, 0x0a, 1, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeQueryV2(body(b))
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.LessOrEqual(t, len(q.Items), len(b))
		again, err := DecodeQueryV2(body(AppendQueryV2(nil, q)))
		require.NoError(t, err)
		require.Equal(t, q, again)
	})
}

func FuzzDecodeAnswerV2(f *testing.F) {
	f.Add(AppendAnswerV2(nil, sampleAnswerV2()))
	f.Add(AppendAnswerV2(nil, &AnswerV2{Shape: TreeConfig{FanoutBits: 4, LeafSize: 64}, HashSize: 4, CheckSize: 1,
		Entries: []Report{{Kind: ReportCells, Depth: 3, Bitmap: bytes.Repeat([]byte{0xff}, 512), Summaries: []Summary{{Count: 2}, {Count: 0}}}}}))
	f.Add([]byte{'H', 'S', 1, byte(wire.AEAnswerV2), 0, 0, 0, 1, 0, 3, 16, 8, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAnswerV2(body(b))
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.LessOrEqual(t, len(a.Entries), len(b))
		again, err := DecodeAnswerV2(body(AppendAnswerV2(nil, a)))
		require.NoError(t, err)
		require.Equal(t, a, again)
	})
}

func FuzzResponderAnswerV2(f *testing.F) {
	tr := fuzzTree(f)
	r := mustResponder(f, tr)
	f.Add(AppendQueryV2(nil, sampleQueryV2()))
	for _, level := range []int{0, 1, 2, 3, 10, 40, 42} {
		f.Add(AppendQueryV2(nil, &QueryV2{Shape: tr.Config(), HashSize: 8, CheckSize: 2, MaxAnswerSize: 512,
			Items: []ProbeItem{
				{Kind: ProbeSummaries, Pos: tr.PositionOf(figureLikeID(), level), Depth: 0, Checks: []byte{0, 0}},
				{Kind: ProbeIDs, Pos: Position{Level: level}},
			}}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ans, err := r.AnswerV2(nil, body(b))
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		q, err := DecodeQueryV2(body(b))
		require.NoError(t, err)
		require.LessOrEqual(t, len(ans), min(q.MaxAnswerSize, DefaultMaxPacketSize))
		a, err := DecodeAnswerV2(body(ans))
		require.NoError(t, err)
		require.LessOrEqual(t, len(a.Entries), len(q.Items))
	})
}

// TestSessionV2AnswersStayWithinTheirDatagram: every query and answer of
// a session fits MaxPacketSize.
func TestSessionV2AnswersStayWithinTheirDatagram(t *testing.T) {
	rng := newRand(32)
	shared := randomIDs(rng, 3000)
	a, b := replicas(t, TreeConfig{}, shared, randomIDs(rng, 40), randomIDs(rng, 40))
	r := mustResponder(t, b)
	s := mustSession(t, a, SessionConfig{})
	now := time.Unix(0, 0)
	s.Start(now)
	for !s.Done() {
		for _, q := range s.Ready() {
			require.LessOrEqual(t, len(q), DefaultMaxPacketSize)
			ans, err := r.AnswerV2(nil, body(q))
			require.NoError(t, err)
			require.LessOrEqual(t, len(ans), DefaultMaxPacketSize)
			_ = s.Handle(now, body(ans))
		}
	}
	require.NoError(t, s.Result().Err)
}
