package security

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/chacha20poly1305"
)

func TestParseSuite(t *testing.T) {
	for _, name := range SuiteNames() {
		s, err := ParseSuite(name)
		require.NoError(t, err)
		require.Equal(t, name, s.String())
	}
	require.Equal(t, "xchacha20-poly1305", DefaultSuite.String())
	_, err := ParseSuite("rot13")
	require.ErrorContains(t, err, `unknown cipher "rot13": want xchacha20-poly1305 or aes-256-gcm`)
	require.Equal(t, "suite-9", Suite(9).String())
}

// The test vectors of c2sp.org/XAES-256-GCM.
func TestXAESVectors(t *testing.T) {
	for _, v := range []struct{ key, ad, want string }{
		{"0101010101010101010101010101010101010101010101010101010101010101", "",
			"ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"},
		{"0303030303030303030303030303030303030303030303030303030303030303", "c2sp.org/XAES-256-GCM",
			"986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d"},
	} {
		raw, err := hex.DecodeString(v.key)
		require.NoError(t, err)
		root, err := newXAESRoot(Key(raw))
		require.NoError(t, err)
		nonce := []byte("ABCDEFGHIJKLMNOPQRSTUVWX")
		aead, err := root.derive(nonce)
		require.NoError(t, err)
		got := aead.Seal(nil, nonce[xaesPrefixSize:], []byte("XAES-256-GCM"), []byte(v.ad))
		require.Equal(t, v.want, hex.EncodeToString(got))
	}
}

func TestWrongCipher(t *testing.T) {
	k := key(t, "a passphrase for tests")
	for _, from := range []Suite{XChaCha20Poly1305, AES256GCM} {
		for _, to := range []Suite{XChaCha20Poly1305, AES256GCM} {
			sealed, err := sealerOf(t, from, k).Seal(nil, plain("m"), now)
			require.NoError(t, err)
			require.Equal(t, byte(from), sealed[suiteAt], "the suite is named in the header")
			_, err = sealerOf(t, to, k).Open(nil, sealed, now)
			if from == to {
				require.NoError(t, err)
				continue
			}
			require.ErrorIs(t, err, ErrWrongCipher, "%v to %v", from, to)
			require.Equal(t, "wrong_cipher", DropReason(err))
		}
	}
	// A suite this version does not know is another suite too.
	sealed, err := sealer(t, k).Seal(nil, plain("m"), now)
	require.NoError(t, err)
	sealed[suiteAt] = 0x42
	_, err = sealer(t, k).Open(nil, sealed, now)
	require.ErrorIs(t, err, ErrWrongCipher)
}

// Datagrams of versions before suites existed: an 8-byte timestamp in bytes
// 8 to 15 and XChaCha20-Poly1305. The default suite opens them, so old and
// new nodes interoperate.
func TestOpensPreSuiteDatagrams(t *testing.T) {
	k := key(t, "a passphrase for tests")
	aead, err := chacha20poly1305.NewX(k[:])
	require.NoError(t, err)
	dg := plain("from an older node")
	old := []byte{dg[0], dg[1], dg[2], dg[3] | 0x80}
	old = binary.BigEndian.AppendUint32(old, uint32(k.ID()))
	old = binary.BigEndian.AppendUint64(old, uint64(now.UnixMilli()))
	nonce := bytes.Repeat([]byte{7}, nonceSize)
	old = append(old, nonce...)
	old = aead.Seal(old, nonce, dg[headerSize:], old[:sealedHdrSize])
	out, err := sealer(t, k).Open(nil, old, now)
	require.NoError(t, err)
	require.Equal(t, dg, out)
}

// An AES256GCM sealer derives its key once and counts its nonces, so no two
// of its datagrams share a nonce however many it seals; two sealers draw
// different prefixes.
func TestAESNonces(t *testing.T) {
	k := key(t, "a passphrase for tests")
	a, b := sealerOf(t, AES256GCM, k), sealerOf(t, AES256GCM, k)
	seen := map[string]bool{}
	var prefix []byte
	for i := 0; i < 1000; i++ {
		sealed, err := a.Seal(nil, plain("m"), now)
		require.NoError(t, err)
		nonce := sealed[sealedHdrSize:sealedBodyFrom]
		if prefix == nil {
			prefix = append([]byte(nil), nonce[:xaesPrefixSize]...)
		}
		require.Equal(t, prefix, nonce[:xaesPrefixSize], "one prefix per sealer and key")
		require.False(t, seen[string(nonce)], "nonce reused")
		seen[string(nonce)] = true
	}
	other, err := b.Seal(nil, plain("m"), now)
	require.NoError(t, err)
	require.NotEqual(t, prefix, other[sealedHdrSize:sealedHdrSize+xaesPrefixSize])
	opener := sealerOf(t, AES256GCM, k)
	for i := 0; i < 3; i++ {
		sealed, err := a.Seal(nil, plain("m"), now)
		require.NoError(t, err)
		_, err = opener.Open(nil, sealed, now)
		require.NoError(t, err)
	}
	require.Len(t, opener.xaesOpened.entries, 1, "one derivation per sender")
}

func TestXAESCacheIsBounded(t *testing.T) {
	c := xaesCache{max: 3}
	for i := 0; i < 10; i++ {
		c.put(xaesCacheKey{key: KeyID(i)}, nil)
	}
	require.Len(t, c.entries, 3)
	// Datagrams that fail to authenticate derive but never enter the cache.
	k := key(t, "a passphrase for tests")
	opener := sealerOf(t, AES256GCM, k)
	sealed, err := sealerOf(t, AES256GCM, k).Seal(nil, plain("m"), now)
	require.NoError(t, err)
	sealed[len(sealed)-1] ^= 1
	_, err = opener.Open(nil, sealed, now)
	require.ErrorIs(t, err, ErrAuth)
	require.Empty(t, opener.xaesOpened.entries)
}

func FuzzOpenAES256GCM(f *testing.F) {
	k := key(f, "a passphrase for tests")
	s, err := sealerOf(f, AES256GCM, k).Seal(nil, plain("seed"), now)
	require.NoError(f, err)
	f.Add(s)
	f.Add(plain("x"))
	f.Add([]byte{'H', 'S', 1, 0x82})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := sealerOf(t, AES256GCM, k).Open(nil, b, now)
		if err == nil {
			require.GreaterOrEqual(t, len(out), 4)
		}
	})
}
