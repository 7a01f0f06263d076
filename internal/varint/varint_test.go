package varint

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRead(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 300, 1 << 50, math.MaxUint64} {
		b := binary.AppendUvarint(nil, v)
		require.Equal(t, len(b), Len(v))
		got, rest, err := Read(append(b, 9))
		require.NoError(t, err)
		require.Equal(t, v, got)
		require.Equal(t, []byte{9}, rest)
	}
	_, _, err := Read(nil)
	require.ErrorIs(t, err, ErrTruncated)
	_, _, err = Read([]byte{0x80})
	require.ErrorIs(t, err, ErrTruncated)
	_, _, err = Read([]byte{0x80, 0x00})
	require.ErrorIs(t, err, ErrNonMinimal)
	_, _, err = Read([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})
	require.ErrorIs(t, err, ErrOverflow)
}
