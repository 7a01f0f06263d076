package gossip

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hearsay-io/hearsay/wire"
)

// Origin signatures, amortized: after a window of its own messages, a
// signing origin publishes, at its next sequence number, a statement: a
// message of kind kindStatement that covers the n sequence numbers just
// below its own with the SHA-256 of their IDs in order, signed with the
// origin's Ed25519 key, whose public key it carries (checked against the
// origin's ID, NodeIDOf). A statement travels like any message (pulls,
// caches, logs, anti-entropy) and is never delivered. Receivers hold the
// messages it covers back (pending.go) until it verifies them.
// docs/protocol.md, "STATEMENT", has the bytes.

// kindStatement follows the 0x00 escape of the topic length byte, as
// kindChunk does: a statement that carries its origin's public key.
// kindKeylessStatement is one that does not: the receiver knows the key
// from an earlier statement (keys.go).
const (
	kindStatement        = 0x02
	kindKeylessStatement = 0x03
)

// MaxStatementRange bounds the sequence numbers one statement covers, and
// so what a receiver must hold back for one.
const MaxStatementRange = 4096

// statementDomain and rangeDomain separate the signed bytes and the range
// hash from any other use of the key or of SHA-256; statementIDDomain
// separates statement IDs.
const (
	statementDomain   = "hearsay/statement/v1"
	rangeDomain       = "hearsay/range/v1"
	statementIDDomain = "hearsay/statement-id/v1"
)

// statement is the decoded body of a statement message; its byte fields
// alias the datagram.
type statement struct {
	n    uint64 // the statement covers [seq-n, seq)
	hash []byte // 32: rangeHash of the IDs of [seq-n, seq)
	pub  []byte // 32: the origin's public key; nil in a keyless statement
	sig  []byte // 64
}

// statementBodySize is the size of a statement's body after the kind byte,
// for a range of n, with or without the key.
func statementBodySize(n uint64, keyed bool) int {
	size := uvarintLen(n) + sha256.Size + ed25519.SignatureSize
	if keyed {
		size += ed25519.PublicKeySize
	}
	return size
}

// decodeStatement decodes the body that follows a statement's kind byte:
// with the key, or without.
func decodeStatement(b []byte, seq uint64, keyed bool) (statement, []byte, error) {
	var s statement
	var err error
	if s.n, b, err = readUvarint(b); err != nil {
		return s, nil, err
	}
	if s.n == 0 || s.n > MaxStatementRange || s.n > seq {
		return s, nil, fmt.Errorf("%w: a statement of %d messages at sequence number %d", wire.ErrMalformed, s.n, seq)
	}
	if len(b) < statementBodySize(s.n, keyed)-uvarintLen(s.n) {
		return s, nil, wire.ErrTruncated
	}
	s.hash, b = b[:sha256.Size], b[sha256.Size:]
	if keyed {
		s.pub, b = b[:ed25519.PublicKeySize], b[ed25519.PublicKeySize:]
	}
	s.sig, b = b[:ed25519.SignatureSize], b[ed25519.SignatureSize:]
	return s, b, nil
}

// signedBytes appends what a statement's signature covers.
func signedBytes(dst []byte, origin NodeID, seq uint64, createdMillis int64, n uint64, rangeHash []byte) []byte {
	dst = append(dst, statementDomain...)
	dst = append(dst, origin[:]...)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(createdMillis))
	dst = binary.BigEndian.AppendUint64(dst, n)
	return append(dst, rangeHash...)
}

// appendStatement appends the encoding of a statement signed with key,
// carrying its public key if keyed.
func appendStatement(dst []byte, key ed25519.PrivateKey, origin NodeID, seq uint64, createdMillis int64, n uint64, rangeHash []byte, keyed bool) []byte {
	var msg [len(statementDomain) + 16 + 24 + sha256.Size]byte
	sig := ed25519.Sign(key, signedBytes(msg[:0], origin, seq, createdMillis, n, rangeHash))
	var pub []byte
	if keyed {
		pub = key.Public().(ed25519.PublicKey)
	}
	return appendStatementFields(dst, origin, seq, createdMillis, n, rangeHash, pub, sig)
}

// appendStatementFields appends the encoding of a statement from its
// fields: keyless if pub is nil.
func appendStatementFields(dst []byte, origin NodeID, seq uint64, createdMillis int64, n uint64, rangeHash, pub, sig []byte) []byte {
	dst = append(dst, origin[:]...)
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendUvarint(dst, uint64(createdMillis))
	kind := byte(kindStatement)
	if pub == nil {
		kind = kindKeylessStatement
	}
	dst = append(dst, 0, kind)
	dst = binary.AppendUvarint(dst, n)
	dst = append(dst, rangeHash...)
	dst = append(dst, pub...)
	return append(dst, sig...)
}

// verifyStatement checks that pub, the key wm carries or the one known for
// its origin, is its origin's key and signed wm.
func verifyStatement(wm *wireMessage, pub []byte) bool {
	s := &wm.stmt
	if len(pub) != ed25519.PublicKeySize || NodeIDOf(pub) != wm.origin {
		return false
	}
	var msg [len(statementDomain) + 16 + 24 + sha256.Size]byte
	return ed25519.Verify(pub, signedBytes(msg[:0], wm.origin, wm.seq, wm.created, s.n, s.hash), s.sig)
}

// rangeHasher hashes the IDs of a statement's range in order: gathered in
// a buffer it reuses, then hashed at once.
type rangeHasher struct{ buf []byte }

func (r *rangeHasher) reset() { r.buf = append(r.buf[:0], rangeDomain...) }

func (r *rangeHasher) add(id *MessageID) { r.buf = append(r.buf, id[:]...) }

func (r *rangeHasher) sum(dst *[sha256.Size]byte) { *dst = sha256.Sum256(r.buf) }

// sumStatementID computes a statement's ID, over its whole encoding.
func (x *idHasher) sumStatementID(raw []byte) MessageID { return x.sumEncoding(statementIDDomain, raw) }

// signer is a signing origin's state: the IDs of its messages not yet
// covered by a statement.
type signer struct {
	runFirst uint64      // the first sequence number this core published
	ids      []MessageID // of [first, first+len(ids))
	first    uint64
	// tat paces statements (the generic cell rate algorithm): one may be
	// made at now if now >= tat - (signBurst-1) × SignWindow; each moves
	// tat SignWindow on from max(tat, now).
	tat    time.Time
	hasher rangeHasher
	// made counts the statements made since start; keyedAt is when the
	// last that carried the key was made (keyedNow).
	made    uint64
	keyedAt time.Time
}

// A signing origin's statement carries its public key when it is its
// first since start, every keyEvery-th, and when keyInterval has passed
// since the last that did; the others leave it out, 32 bytes less, and
// receivers verify them with the key they cached (keys.go). A receiver
// that lacks the key waits for the next keyed one: at most keyEvery
// statements or keyInterval, well within unsignedRounds.
const (
	keyEvery    = 64
	keyInterval = 2 * time.Second
)

// keyedNow reports whether the statement being made at now carries the key.
func (s *signer) keyedNow(now time.Time) bool {
	keyed := s.made%keyEvery == 0 || !now.Before(s.keyedAt.Add(keyInterval))
	if keyed {
		s.keyedAt = now
	}
	s.made++
	return keyed
}

// signing reports whether this core signs its messages and requires
// signatures of every origin's.
func (c *Core) signing() bool { return c.cfg.SigningKey != nil }

// published records a message (or chunk) this node has just published at
// seq with id, for the next statement. Push numbers contiguously, and
// nothing else takes a number while a window is open, so the window is
// [first, first+len(ids)).
func (c *Core) published(seq uint64, id MessageID) {
	s := &c.sign
	if len(s.ids) == 0 {
		s.first = seq
	}
	s.ids = append(s.ids, id)
}

// maybeSign signs at once what is not yet signed if the pace allows (one
// signature per message at low rates), or if the window is full;
// otherwise nextSign says when.

// signBurst is how many statements may follow each other closer than
// SignWindow: jitter in a low rate does not delay messages.
const signBurst = 4

func (c *Core) maybeSign(now time.Time) {
	s := &c.sign
	if len(s.ids) == 0 {
		return
	}
	if len(s.ids) >= MaxStatementRange-1 || !now.Before(c.nextSign()) {
		c.signNow(now)
	}
}

// nextSign is when the pending window must be signed; zero: nothing to sign.
func (c *Core) nextSign() time.Time {
	s := &c.sign
	if len(s.ids) == 0 {
		return time.Time{}
	}
	return s.tat.Add(-(signBurst - 1) * c.cfg.SignWindow)
}

// signNow publishes a statement over the messages not yet covered.
func (c *Core) signNow(now time.Time) {
	s := &c.sign
	if len(s.ids) == 0 {
		return
	}
	s.hasher.reset()
	for i := range s.ids {
		s.hasher.add(&s.ids[i])
	}
	var sum [sha256.Size]byte
	s.hasher.sum(&sum)
	n := uint64(len(s.ids))
	seq := s.first + n
	created := max(now.UnixMilli(), 1)
	keyed := s.keyedNow(now)
	enc := appendStatement(make([]byte, 0, 64+statementBodySize(n, keyed)+16), c.cfg.SigningKey, c.cfg.ID, seq, created, n, sum[:], keyed)
	s.ids = s.ids[:0]
	if s.tat.Before(now) {
		s.tat = now
	}
	s.tat = s.tat.Add(c.cfg.SignWindow)
	wm, _, err := decodeMessage(enc)
	if err != nil {
		return // a bug: nothing is offered, receivers drop the range as unsigned
	}
	x := hashers.Get().(*idHasher)
	id := x.sumStatementID(enc)
	hashers.Put(x)
	e := c.newEntry(wm, id, enc)
	if _, err := c.cfg.Filter.Add(id, c.expiry(created)); err != nil {
		c.stats.FilterErrors++
	}
	c.nextSeq = seq + 1
	c.addToCache(e)
	c.logAccepted(e)
	c.held.add(c.cfg.ID, seq, c.round)
	c.trustStats.StatementsOut++
}
