package dht

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/wire"
)

func nodeID(b byte) gossip.NodeID {
	var id gossip.NodeID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	require.NoError(t, err)
	return b
}

func TestPacketRoundTrip(t *testing.T) {
	for _, p := range []Packet{
		{Type: wire.DHTPing, Sender: nodeID(1), RequestID: 42},
		{Type: wire.DHTPong, Sender: nodeID(2), RequestID: 1<<64 - 1},
		{Type: wire.DHTFindNode, Sender: nodeID(3), RequestID: 7, Target: nodeID(9)},
		{Type: wire.DHTFindNode, Sender: nodeID(3), RequestID: 7, Target: nodeID(9), Padding: FindNodePadding(16)},
		{Type: wire.DHTNodes, Sender: nodeID(4), RequestID: 8},
		{Type: wire.DHTNodes, Sender: nodeID(4), RequestID: 8, Nodes: []Contact{
			{ID: nodeID(5), Addr: netip.MustParseAddrPort("192.0.2.1:7600")},
			{ID: nodeID(6), Addr: netip.MustParseAddrPort("[2001:db8::1]:7946")},
		}},
	} {
		enc := AppendPacket(nil, &p)
		require.True(t, IsPacket(enc))
		got, err := DecodePacket(enc)
		require.NoError(t, err, "%v", p.Type)
		if p.Nodes == nil {
			got.Nodes = nil
		}
		require.Equal(t, p, got)
	}
}

// TestPacketBytes pins the encodings given in docs/registries.md.
func TestPacketBytes(t *testing.T) {
	sender, _ := gossip.ParseNodeID("000102030405060708090a0b0c0d0e0f")
	target, _ := gossip.ParseNodeID("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
	ping := AppendPacket(nil, &Packet{Type: wire.DHTPing, Sender: sender, RequestID: 0x1122334455667788})
	require.Equal(t, unhex(t, `48 53 01 20  000102030405060708090a0b0c0d0e0f  1122334455667788`), ping)
	require.Len(t, ping, PingSize)

	find := AppendPacket(nil, &Packet{Type: wire.DHTFindNode, Sender: sender, RequestID: 1, Target: target, Padding: 3})
	require.Equal(t, unhex(t, `48 53 01 22  000102030405060708090a0b0c0d0e0f  0000000000000001
		f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff  000000`), find)

	nodes := AppendPacket(nil, &Packet{Type: wire.DHTNodes, Sender: sender, RequestID: 1, Nodes: []Contact{
		{ID: target, Addr: netip.MustParseAddrPort("192.0.2.1:7600")},
		{ID: sender, Addr: netip.MustParseAddrPort("[2001:db8::1]:7946")},
	}})
	require.Equal(t, unhex(t, `48 53 01 23  000102030405060708090a0b0c0d0e0f  0000000000000001  02
		f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff 04 c0000201 1db0
		000102030405060708090a0b0c0d0e0f 06 20010db8000000000000000000000001 1f0a`), nodes)
	require.Len(t, nodes, nodesHeaderSize+contactSize4+contactSize6)

	// The default padding makes room for 16 IPv6 contacts and a PING.
	require.Equal(t, 162, FindNodePadding(16))
	require.GreaterOrEqual(t, 3*(FindNodeSize+FindNodePadding(16)), nodesHeaderSize+16*contactSize6+PingSize)
	require.Equal(t, 0, FindNodePadding(0))
}

func TestAppendPacketNormalises(t *testing.T) {
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.1]:7600")
	enc := AppendPacket(nil, &Packet{Type: wire.DHTNodes, Sender: nodeID(1), Nodes: []Contact{{ID: nodeID(2), Addr: mapped}}})
	got, err := DecodePacket(enc)
	require.NoError(t, err)
	require.Equal(t, netip.MustParseAddrPort("192.0.2.1:7600"), got.Nodes[0].Addr)

	many := make([]Contact, 40)
	for i := range many {
		many[i] = Contact{ID: nodeID(byte(i + 1)), Addr: netip.MustParseAddrPort("192.0.2.1:7600")}
	}
	got, err = DecodePacket(AppendPacket(nil, &Packet{Type: wire.DHTNodes, Sender: nodeID(1), Nodes: many}))
	require.NoError(t, err)
	require.Len(t, got.Nodes, MaxNodesPerPacket)
}

func TestDecodePacketRejects(t *testing.T) {
	good := AppendPacket(nil, &Packet{Type: wire.DHTNodes, Sender: nodeID(1), RequestID: 1, Nodes: []Contact{
		{ID: nodeID(5), Addr: netip.MustParseAddrPort("192.0.2.1:7600")},
	}})
	contactAt := nodesHeaderSize
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, wire.ErrShortPacket},
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b }), wire.ErrBadMagic},
		{"version", mutate(func(b []byte) []byte { b[2] = 2; return b }), wire.ErrVersion},
		{"gossip type", mutate(func(b []byte) []byte { b[3] = byte(wire.Pull); return b }), wire.ErrMalformed},
		{"unassigned DHT type", mutate(func(b []byte) []byte { b[3] = 0x24; return b }), wire.ErrMalformed},
		{"no sender", good[:4+10], wire.ErrTruncated},
		{"zero sender", mutate(func(b []byte) []byte { clear(b[4:20]); return b }), wire.ErrMalformed},
		{"no count", good[:requestHeaderSize], wire.ErrTruncated},
		{"count beyond data", mutate(func(b []byte) []byte { b[requestHeaderSize] = 2; return b }), wire.ErrTruncated},
		{"count above 32", mutate(func(b []byte) []byte { b[requestHeaderSize] = 33; return b }), wire.ErrMalformed},
		{"zero contact ID", mutate(func(b []byte) []byte { clear(b[contactAt : contactAt+16]); return b }), wire.ErrMalformed},
		{"family 5", mutate(func(b []byte) []byte { b[contactAt+16] = 5; return b }), wire.ErrMalformed},
		{"truncated IPv6", mutate(func(b []byte) []byte { b[contactAt+16] = 6; return b }), wire.ErrTruncated},
		{"port 0", mutate(func(b []byte) []byte { b[len(b)-2], b[len(b)-1] = 0, 0; return b }), wire.ErrMalformed},
		{"trailing", append(bytes.Clone(good), 0), wire.ErrTrailingBytes},
		{"ping trailing", append(AppendPacket(nil, &Packet{Type: wire.DHTPing, Sender: nodeID(1)}), 0), wire.ErrTrailingBytes},
		{"short find_node", AppendPacket(nil, &Packet{Type: wire.DHTPing, Sender: nodeID(1)})[:PingSize-1], wire.ErrTruncated},
		{"find_node no target", mutate(func(b []byte) []byte { b[3] = byte(wire.DHTFindNode); return b[:PingSize+4] }), wire.ErrTruncated},
		{"non-zero padding", append(AppendPacket(nil, &Packet{Type: wire.DHTFindNode, Sender: nodeID(1)}), 0, 1), wire.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePacket(tc.data)
			require.ErrorIs(t, err, tc.want)
		})
	}

	// IPv4 must travel as family 4: one address, one encoding.
	v6 := AppendPacket(nil, &Packet{Type: wire.DHTNodes, Sender: nodeID(1), Nodes: []Contact{
		{ID: nodeID(5), Addr: netip.MustParseAddrPort("[2001:db8::1]:7600")},
	}})
	copy(v6[contactAt+17:], netip.MustParseAddr("::ffff:192.0.2.1").AsSlice())
	_, err := DecodePacket(v6)
	require.ErrorIs(t, err, wire.ErrMalformed)
}

func TestIsPacket(t *testing.T) {
	require.True(t, IsPacket(wire.AppendHeader(nil, 0x20)))
	require.True(t, IsPacket(wire.AppendHeader(nil, 0x2f)))
	require.False(t, IsPacket(wire.AppendHeader(nil, 0x1f)))
	require.False(t, IsPacket(wire.AppendHeader(nil, 0x30)))
	require.False(t, IsPacket(wire.AppendHeader(nil, wire.Pull)))
	require.False(t, IsPacket([]byte{'H', 'S', 1}))
	require.False(t, IsPacket([]byte{'H', 'S', 2, 0x20}))
	require.False(t, IsPacket([]byte{'H', 'S', 1, 0x20 | 0x80})) // sealed: open it first
	require.True(t, IsPacket([]byte{'H', 'S', 1, 0x2a}))

	require.True(t, IsRequest(AppendPacket(nil, &Packet{Type: wire.DHTPing, Sender: nodeID(1)})))
	require.True(t, IsRequest(AppendPacket(nil, &Packet{Type: wire.DHTFindNode, Sender: nodeID(1)})))
	require.False(t, IsRequest(AppendPacket(nil, &Packet{Type: wire.DHTPong, Sender: nodeID(1)})))
	require.False(t, IsRequest(AppendPacket(nil, &Packet{Type: wire.DHTNodes, Sender: nodeID(1)})))
	require.False(t, IsRequest([]byte{'H', 'S', 1}))
}

func FuzzDecodePacket(f *testing.F) {
	f.Add(AppendPacket(nil, &Packet{Type: wire.DHTPing, Sender: nodeID(1), RequestID: 9}))
	f.Add(AppendPacket(nil, &Packet{Type: wire.DHTPong, Sender: nodeID(1), RequestID: 9}))
	f.Add(AppendPacket(nil, &Packet{Type: wire.DHTFindNode, Sender: nodeID(1), Target: nodeID(7), Padding: 5}))
	f.Add(AppendPacket(nil, &Packet{Type: wire.DHTNodes, Sender: nodeID(1), Nodes: []Contact{
		{ID: nodeID(5), Addr: netip.MustParseAddrPort("192.0.2.1:7600")},
		{ID: nodeID(6), Addr: netip.MustParseAddrPort("[2001:db8::1]:7946")},
	}}))
	f.Add([]byte{'H', 'S', 1, 0x23})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePacket(data)
		if err != nil {
			return
		}
		// One datagram, one encoding: what decodes re-encodes to itself.
		require.Equal(t, data, AppendPacket(nil, &p))
		require.LessOrEqual(t, len(p.Nodes), MaxNodesPerPacket)
	})
}

// FuzzHandle feeds arbitrary datagrams to a running table: nothing may
// panic, and no answer may exceed three times the datagram that caused it
// (a stranger's address may be forged).
func FuzzHandle(f *testing.F) {
	f.Add(AppendPacket(nil, &Packet{Type: wire.DHTPing, Sender: nodeID(1), RequestID: 9}))
	f.Add(AppendPacket(nil, &Packet{Type: wire.DHTFindNode, Sender: nodeID(1), Target: nodeID(7)}))
	f.Add(AppendPacket(nil, &Packet{Type: wire.DHTNodes, Sender: nodeID(1), Nodes: []Contact{
		{ID: nodeID(5), Addr: netip.MustParseAddrPort("192.0.2.1:7600")},
	}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, now := newTestTable(t, 40)
		from := netip.MustParseAddrPort("203.0.113.9:4000")
		tb.Handle(now, from, data)
		out := 0
		for _, d := range tb.Ready().Datagrams {
			require.Equal(t, from, d.To)
			out += len(d.Data)
		}
		require.LessOrEqual(t, out, 3*len(data))
	})
}
