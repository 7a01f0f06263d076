package security

import (
	"fmt"
	"strings"
)

// Suite is the authenticated cipher a cluster seals its datagrams with. It
// is named in every sealed header (docs/protocol.md), so a node meeting a
// peer of another suite drops its datagrams as wrong_cipher rather than as
// failed authentication.
type Suite uint8

// The suites. The zero value is the default, and is the only suite of
// versions before suites existed: its header byte is the one that was the
// top byte of their timestamps, always zero.
const (
	// XChaCha20Poly1305 is XChaCha20-Poly1305 with random 24-byte nonces:
	// fast everywhere, with or without AES instructions.
	XChaCha20Poly1305 Suite = iota
	// AES256GCM is AES-256-GCM with 24-byte extended nonces (XAES-256-GCM,
	// c2sp.org/XAES-256-GCM): hardware AES where the CPU has it, and no
	// limit on datagrams per key, which plain GCM's 12-byte random nonces
	// would impose (2^32 per key across the whole cluster).
	AES256GCM
	numSuites
)

var suiteNames = [numSuites]string{"xchacha20-poly1305", "aes-256-gcm"}

// DefaultSuite is the suite of a SealerConfig that names none.
const DefaultSuite = XChaCha20Poly1305

// String returns the suite's name as --cipher takes it.
func (s Suite) String() string {
	if s < numSuites {
		return suiteNames[s]
	}
	return fmt.Sprintf("suite-%d", uint8(s))
}

// SuiteNames lists the suites' names, the default first.
func SuiteNames() []string { return append([]string(nil), suiteNames[:]...) }

// ParseSuite returns the suite called name.
func ParseSuite(name string) (Suite, error) {
	for i, n := range suiteNames {
		if n == name {
			return Suite(i), nil
		}
	}
	return 0, fmt.Errorf("unknown cipher %q: want %s", name, strings.Join(suiteNames[:], " or "))
}
