package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/security"
)

func testSpec() nodeSpec {
	key := security.Key{1, 2, 3}
	cfg := Config{Nodes: 4, Messages: 50, Size: 64, Interval: 100 * time.Millisecond, Fanout: 3}
	return newNodeSpec(cfg, Hearsay, &key, 2)
}

func TestProtocolCommandsRoundTrip(t *testing.T) {
	for _, c := range []command{
		{kind: cmdNode, spec: testSpec()},
		{kind: cmdPeers, peers: []string{"127.0.0.1:7000", "127.0.0.1:7001", "[::1]:7002"}},
		{kind: cmdPublish, index: 0},
		{kind: cmdPublish, index: MaxMessages - 1},
		{kind: cmdCounters},
	} {
		line, err := appendCommand(nil, c)
		require.NoError(t, err)
		require.True(t, strings.HasSuffix(string(line), "\n"), "%q", line)
		require.Equal(t, 1, strings.Count(string(line), "\n"), "%q", line)
		got, err := parseCommand(line[:len(line)-1])
		require.NoError(t, err, "%q", line)
		assert.Equal(t, c, got)
	}
	assert.Equal(t, "publish 17\n", string(appendPublish(nil, 17)))
	line, err := appendCommand(nil, command{kind: cmdNode, spec: testSpec()})
	require.NoError(t, err)
	assert.Equal(t, `node {"system":"hearsay","index":2,"nodes":4,"messages":50,"size":64,"interval_ns":100000000,"fanout":3,`+
		`"key":"0102030000000000000000000000000000000000000000000000000000000000"}`+"\n", string(line))
}

func TestProtocolReportsRoundTrip(t *testing.T) {
	for _, r := range []report{
		{kind: repAddr, addr: "127.0.0.1:40000"},
		{kind: repReady},
		{kind: repPublished, index: 7, sent: 1_700_000_000_000_000_001, returned: 1_700_000_000_000_000_999},
		{kind: repDelivered, deliveries: []delivery{{index: 3, at: 1_700_000_000_000_000_500}, {index: 0, at: 1}}},
		{kind: repCounters, counters: nodeCounters{BytesOut: 1 << 40, Duplicates: 3, Drops: map[string]uint64{"auth_failed": 2},
			BackpressureWaits: 9, CPUNS: 12_345_678, CPUKnown: true}},
	} {
		line, err := appendReport(nil, r)
		require.NoError(t, err)
		require.Equal(t, 1, strings.Count(string(line), "\n"), "%q", line)
		var got report
		require.NoError(t, parseReport(line[:len(line)-1], &got), "%q", line)
		assert.Equal(t, r, got)
	}
	line, err := appendReport(nil, report{kind: repDelivered, deliveries: []delivery{{index: 3, at: 500}, {index: 4, at: 600}}})
	require.NoError(t, err)
	assert.Equal(t, "delivered 3 500 4 600\n", string(line))

	_, err = appendReport(nil, report{kind: repDelivered})
	assert.Error(t, err, "an empty delivered report")
	_, err = appendReport(nil, report{kind: repDelivered, deliveries: make([]delivery, maxDeliveriesPerLine+1)})
	assert.Error(t, err, "too many deliveries for a line")
}

func TestProtocolCountersConvert(t *testing.T) {
	c := counters{bytesOut: 1000, duplicates: 2, drops: map[string]uint64{"cache_full": 4}, waits: 5,
		cpu: 6 * time.Millisecond, cpuKnown: true}
	assert.Equal(t, c, newNodeCounters(c).counters())
	assert.Equal(t, counters{drops: map[string]uint64{}}, nodeCounters{}.counters())
}

// parseReport reuses the deliveries' array: the parent parses a report
// per line without allocating.
func TestProtocolParseReportReuses(t *testing.T) {
	var r report
	require.NoError(t, parseReport([]byte("delivered 1 10 2 20 3 30"), &r))
	first := &r.deliveries[0]
	require.NoError(t, parseReport([]byte("delivered 4 40"), &r))
	assert.Same(t, first, &r.deliveries[0])
	assert.Equal(t, []delivery{{4, 40}}, r.deliveries)
	require.NoError(t, parseReport([]byte("ready"), &r))
	assert.Equal(t, repReady, r.kind)
	assert.Empty(t, r.deliveries)
}

func TestProtocolMalformedCommands(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"", "unknown command"},
		{"hello", `unknown command "hello"`},
		{"PUBLISH 1", "unknown command"},
		{"publish", "want a message index, got 0 words"},
		{"publish 1 2", "want a message index, got 2 words"},
		{"publish -1", `bad message index "-1"`},
		{"publish +1", `bad message index "+1"`},
		{"publish 0x10", `bad message index "0x10"`},
		{"publish 1000000", `bad message index "1000000"`},
		{"publish 99999999999999999999", "bad message index"},
		{"publish  1", "empty word"},
		{"publish 1 ", "empty word"},
		{"counters now", "counters: takes nothing"},
		{"peers", "want 1 to 100 addresses, got 0"},
		{"peers 127.0.0.1", `bad address "127.0.0.1"`},
		{"peers 127.0.0.1:0", `bad address "127.0.0.1:0"`},
		{"peers example.com:80", "bad address"},
		{"peers 10.0.0.1:7000", "not on the loopback interface"},
		{"peers 127.0.0.1:7000 192.168.1.1:7000", "not on the loopback interface"},
		{"peers " + strings.Repeat("127.0.0.1:1 ", 101)[:12*101-1], "want 1 to 100 addresses, got 101"},
		{"node", "node: bad spec"},
		{"node {", "node: bad spec"},
		{`node {"system":"hearsay","colour":"blue"}`, `unknown field "colour"`},
		{`node {"system":"hearsay"} {}`, "text after the spec"},
		{`node {"system":"hearsay"}}`, "text after the spec"},
		{`node {"index":"two"}`, "node: bad spec"},
	} {
		_, err := parseCommand([]byte(tc.line))
		if assert.Error(t, err, "%q", tc.line) {
			assert.ErrorIs(t, err, errProtocol, "%q", tc.line)
			assert.Contains(t, err.Error(), tc.want, "%q", tc.line)
		}
	}
}

func TestProtocolMalformedReports(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"", "unknown report"},
		{"hello world", `unknown report "hello world"`},
		{"addr", "want one address, got 0 words"},
		{"addr 127.0.0.1:1 127.0.0.1:2", "want one address, got 2 words"},
		{"addr 8.8.8.8:53", "not on the loopback interface"},
		{"ready now", "ready: takes nothing"},
		{"published 1 2", "want an index and two times, got 2 words"},
		{"published 1 2 x", `bad time "x"`},
		{"published 1 0 5", `bad time "0"`},
		{"published 1 -5 5", `bad time "-5"`},
		{"published x 2 3", `bad message index "x"`},
		{"delivered", "want 1 to 1024 index and time pairs, got 0 words"},
		{"delivered 1", "got 1 words"},
		{"delivered 1 2 3", "got 3 words"},
		{"delivered 1 2  3 4", "empty word"},
		{"delivered 1 x", `bad time "x"`},
		{"delivered 1 9223372036854775808", "bad time"},
		{"delivered " + strings.Repeat("1 2 ", maxDeliveriesPerLine+1)[:4*(maxDeliveriesPerLine+1)-1], "got 2050 words"},
		{"counters", "counters: EOF"},
		{"counters {}x", "text after the counters"},
		{`counters {"bytes_out":-1}`, "counters"},
		{`counters {"cpu":1}`, `unknown field "cpu"`},
	} {
		var r report
		err := parseReport([]byte(tc.line), &r)
		if assert.Error(t, err, "%q", tc.line) {
			assert.ErrorIs(t, err, errProtocol, "%q", tc.line)
			assert.Contains(t, err.Error(), tc.want, "%q", tc.line)
		}
	}
}

func TestProtocolNodeSpec(t *testing.T) {
	spec := testSpec()
	cfg, key, err := spec.config()
	require.NoError(t, err)
	assert.Equal(t, 4, cfg.Nodes)
	assert.Equal(t, 50, cfg.Messages)
	assert.Equal(t, 64, cfg.Size)
	assert.Equal(t, 100*time.Millisecond, cfg.Interval)
	assert.Equal(t, 3, cfg.Fanout)
	assert.False(t, cfg.Plaintext)
	require.NotNil(t, key)
	assert.Equal(t, security.Key{1, 2, 3}, *key)

	full := newNodeSpec(Config{Nodes: 4, Messages: 50, Size: 64, Interval: 100 * time.Millisecond, Fanout: 3,
		API: true, Cipher: security.AES256GCM}, Hearsay, nil, 1)
	cfg, _, err = full.config()
	require.NoError(t, err)
	assert.True(t, cfg.API, "the API mode reaches the node process")
	assert.Equal(t, security.AES256GCM, cfg.Cipher, "so does the cipher")

	plain := spec
	plain.Key = ""
	cfg, key, err = plain.config()
	require.NoError(t, err)
	assert.True(t, cfg.Plaintext)
	assert.Nil(t, key)

	for name, tc := range map[string]struct {
		edit func(*nodeSpec)
		want string
	}{
		"no system":      {func(s *nodeSpec) { s.System = "" }, "are required"},
		"no interval":    {func(s *nodeSpec) { s.IntervalNS = 0 }, "are required"},
		"unknown system": {func(s *nodeSpec) { s.System = "serf" }, `unknown system "serf"`},
		"index too big":  {func(s *nodeSpec) { s.Index = 4 }, "index must be between 0 and 3, got 4"},
		"negative index": {func(s *nodeSpec) { s.Index = -1 }, "index must be between 0 and 3, got -1"},
		"one node":       {func(s *nodeSpec) { s.Nodes = 1; s.Index = 0 }, "Nodes must be between 2 and 100"},
		"size":           {func(s *nodeSpec) { s.Size = 8 }, "Size must be between"},
		"short key":      {func(s *nodeSpec) { s.Key = "0102" }, "key must be 32 bytes in hex"},
		"key not hex":    {func(s *nodeSpec) { s.Key = strings.Repeat("zz", 32) }, "key must be 32 bytes in hex"},
		"unknown cipher": {func(s *nodeSpec) { s.Cipher = 9 }, `unknown cipher "suite-9"`},
	} {
		t.Run(name, func(t *testing.T) {
			s := testSpec()
			tc.edit(&s)
			_, _, err := s.config()
			require.ErrorIs(t, err, errProtocol)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// FuzzProtocolParse feeds both parsers anything: they must not panic, and
// what they accept must encode back to a line they parse the same way.
func FuzzProtocolParse(f *testing.F) {
	for _, seed := range []string{
		"publish 12", "counters", "peers 127.0.0.1:1 [::1]:2", `node {"system":"hearsay","index":1}`,
		"addr 127.0.0.1:5", "ready", "published 1 2 3", "delivered 1 2 3 4",
		`counters {"bytes_out":1,"drops":{"x":1},"cpu_known":true}`, "delivered 1 2  3 4", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if c, err := parseCommand(line); err == nil {
			again, err := appendCommand(nil, c)
			require.NoError(t, err)
			c2, err := parseCommand(again[:len(again)-1])
			require.NoError(t, err, "%q from %q", again, line)
			assert.Equal(t, c, c2)
		}
		var r report
		if err := parseReport(line, &r); err == nil {
			again, err := appendReport(nil, r)
			require.NoError(t, err)
			var r2 report
			require.NoError(t, parseReport(again[:len(again)-1], &r2), "%q from %q", again, line)
			assert.Equal(t, r, r2)
		}
	})
}
