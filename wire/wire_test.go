package wire

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadUvarint(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 300, 1 << 50, math.MaxUint64} {
		b := binary.AppendUvarint(nil, v)
		require.Equal(t, len(b), UvarintLen(v))
		got, rest, err := ReadUvarint(append(b, 9))
		require.NoError(t, err)
		require.Equal(t, v, got)
		require.Equal(t, []byte{9}, rest)
	}
	_, _, err := ReadUvarint(nil)
	require.ErrorIs(t, err, ErrVarintTruncated)
	_, _, err = ReadUvarint([]byte{0x80})
	require.ErrorIs(t, err, ErrVarintTruncated)
	_, _, err = ReadUvarint([]byte{0x80, 0x00})
	require.ErrorIs(t, err, ErrVarintNonMinimal)
	_, _, err = ReadUvarint([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})
	require.ErrorIs(t, err, ErrVarintOverflow)
}

func TestParseHeader(t *testing.T) {
	d := AppendHeader(nil, Pull)
	d = append(d, 7)
	typ, body, err := Parse(d)
	require.NoError(t, err)
	require.Equal(t, Pull, typ)
	require.Equal(t, []byte{7}, body)

	_, _, err = Parse([]byte{'H', 'S', Version})
	require.ErrorIs(t, err, ErrShortPacket)
	_, _, err = Parse([]byte{'X', 'S', Version, 1})
	require.ErrorIs(t, err, ErrBadMagic)
	_, _, err = Parse([]byte{'H', 'S', Version + 1, 1})
	require.ErrorIs(t, err, ErrVersion)
}

func TestPacketTypeOwners(t *testing.T) {
	for typ, want := range map[PacketType]Owner{
		Pull: OwnerGossip, Messages: OwnerGossip, Fetch: OwnerGossip, More: OwnerGossip, Hint: OwnerGossip,
		PullAck: OwnerPeers, AEQuery: OwnerAntiEntropy, AEAnswer: OwnerAntiEntropy,
		DHTPing: OwnerDHT, DHTPong: OwnerDHT, DHTFindNode: OwnerDHT, DHTNodes: OwnerDHT,
		0x00: OwnerNone, 0x30: OwnerNone, 0x7f: OwnerNone,
	} {
		require.Equal(t, want, typ.Owner(), "type %s", typ)
	}
	// Every named type has a name, and the names are distinct.
	seen := map[string]bool{}
	for typ := range typeNames {
		require.NotContains(t, seen, typ.String())
		seen[typ.String()] = true
	}
}

func FuzzParse(f *testing.F) {
	f.Add(AppendHeader(nil, Pull))
	f.Add(append(AppendHeader(nil, DHTNodes), 1, 2, 3))
	f.Add([]byte{'H', 'S', Version, 0x81})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, d []byte) {
		typ, body, err := Parse(d)
		if err != nil {
			require.True(t, errors.Is(err, ErrShortPacket) || errors.Is(err, ErrBadMagic) || errors.Is(err, ErrVersion), "%v", err)
			return
		}
		require.Equal(t, d[HeaderSize:], body)
		require.Equal(t, AppendHeader(nil, typ), d[:HeaderSize])
		_ = typ.Owner().String()
		_ = typ.String()
	})
}

func FuzzReadUvarint(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{0x80, 0x01})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, rest, err := ReadUvarint(b)
		if err != nil {
			return
		}
		// Strict: what decodes re-encodes to the same bytes.
		n := len(b) - len(rest)
		require.Equal(t, b[:n], binary.AppendUvarint(nil, v))
		require.Equal(t, n, UvarintLen(v))
	})
}
