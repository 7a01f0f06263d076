package dht

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/hearsay-io/hearsay/gossip"
)

// Snapshot format (docs/registries.md):
//
//	"HSDT" | version 1 | contact count (uvarint) | contacts | CRC-32C (u32be)
//
// each contact as in a NODES packet: ID (16), family (4 or 6), address (4
// or 16), port (u16be). The checksum covers everything before it.

// ErrCorruptSnapshot is returned by Restore for bytes that are not a
// snapshot this version wrote intact.
var ErrCorruptSnapshot = errors.New("dht: corrupt peer snapshot")

var snapshotMagic = [4]byte{'H', 'S', 'D', 'T'}

const (
	snapshotVersion = 1
	// MaxSnapshotContacts bounds what Snapshot writes and Restore reads.
	MaxSnapshotContacts = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot encodes the contacts that answered their last request, table
// first, so that a restarted node can rejoin through them (Restore) even
// when its bootstrap nodes are gone.
func (t *Table) Snapshot() []byte {
	var list []Contact
	seen := make(map[gossip.NodeID]bool)
	add := func(c *contact) {
		if c.answering() && !seen[c.id] && len(list) < MaxSnapshotContacts {
			seen[c.id] = true
			list = append(list, c.asContact())
		}
	}
	for i := range t.buckets {
		for _, c := range t.buckets[i].entries {
			add(c)
		}
	}
	for _, r := range t.pool.regions {
		for _, c := range r.members {
			add(c)
		}
	}
	return encodeSnapshot(list)
}

func encodeSnapshot(list []Contact) []byte {
	b := append([]byte(nil), snapshotMagic[:]...)
	b = append(b, snapshotVersion)
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, c := range list {
		b = appendContact(b, c)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// DecodeSnapshot decodes a snapshot. Every error wraps ErrCorruptSnapshot.
// It allocates at most in proportion to len(b).
func DecodeSnapshot(b []byte) ([]Contact, error) {
	const minSize = len(snapshotMagic) + 1 + 1 + 4
	if len(b) < minSize {
		return nil, fmt.Errorf("%w: %d bytes, at least %d expected", ErrCorruptSnapshot, len(b), minSize)
	}
	if [4]byte(b[:4]) != snapshotMagic {
		return nil, fmt.Errorf("%w: not a peer snapshot (bad magic)", ErrCorruptSnapshot)
	}
	if b[4] != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d, this node reads %d", ErrCorruptSnapshot, b[4], snapshotVersion)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch (truncated or damaged)", ErrCorruptSnapshot)
	}
	n, k := binary.Uvarint(body[5:])
	if k <= 0 || (k > 1 && body[5+k-1] == 0) {
		return nil, fmt.Errorf("%w: bad contact count", ErrCorruptSnapshot)
	}
	rest := body[5+k:]
	if n > MaxSnapshotContacts || n > uint64(len(rest)/contactSize4) {
		return nil, fmt.Errorf("%w: %d contacts in %d bytes", ErrCorruptSnapshot, n, len(rest))
	}
	list := make([]Contact, 0, n)
	for range n {
		c, r, err := decodeContact(rest)
		if err != nil {
			return nil, fmt.Errorf("%w: contact %d: %w", ErrCorruptSnapshot, len(list), err)
		}
		list, rest = append(list, c), r
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorruptSnapshot, len(rest))
	}
	return list, nil
}

// Restore adds the contacts of a snapshot as join candidates: they are
// pinged at the next Tick, and again with the bootstrap addresses whenever
// the table must join anew, and enter the table when they answer. Restore
// before the first Tick for a fast rejoin. A corrupt snapshot changes
// nothing and returns an error wrapping ErrCorruptSnapshot.
func (t *Table) Restore(b []byte) error {
	list, err := DecodeSnapshot(b)
	if err != nil {
		return err
	}
	for _, c := range list {
		if c.ID != t.cfg.Self && c.Addr != t.cfg.SelfAddr && usableAddr(c.Addr) &&
			len(t.restored) < MaxSnapshotContacts {
			t.restored = append(t.restored, c)
		}
	}
	t.restoreDue = true
	return nil
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so that a crash leaves the old file or the new one, never half.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
