package gossip

import (
	"bytes"
	"fmt"
	"time"
	"unsafe"

	"github.com/hearsay-io/hearsay/wire"
)

// partial is a large message some of whose chunks are held.
type partial struct {
	id       MessageID // the ID its chunks claim for it
	origin   NodeID
	first    uint64 // the first chunk's sequence number: the message's Seq
	created  int64
	topic    string
	count    int
	total    int
	have     int
	chunks   [][]byte  // payloads by index; nil until held
	cost     int       // what it counts against the memory bound
	deadline time.Time // zero until the next expiry pass sets it (rebuilt from the log)
	gone     bool      // completed or dropped; still in the list until compaction
}

// partialOverhead estimates a partial's bookkeeping besides its slots, so
// that many small hostile partials cannot hold more than the bound says.
const partialOverhead = 256

// partialCost is what a partial counts against the memory bound from the
// moment it opens: its whole payload, reserved up front so that every open
// partial can complete, and its bookkeeping.
func partialCost(h *chunkHeader) int {
	return h.total + h.count*int(unsafe.Sizeof([]byte(nil))) + partialOverhead
}

// matches reports whether wm, a chunk claiming p's ID, agrees with the
// chunks p already holds.
func (p *partial) matches(wm *wireMessage) bool {
	h := &wm.chunk
	return wm.origin == p.origin && wm.seq-uint64(h.index) == p.first && wm.created == p.created &&
		h.count == p.count && h.total == p.total && string(wm.topic) == p.topic
}

// put stores the payload of chunk index; the slot must be empty.
func (p *partial) put(index int, payload []byte) {
	p.chunks[index] = payload
	p.have++
}

// unput empties slot index again.
func (p *partial) unput(index int) {
	p.chunks[index] = nil
	p.have--
}

// assemble returns the whole payload, which p must hold all of, and whether
// it hashes to the ID the chunks claimed.
func (p *partial) assemble() ([]byte, bool) {
	buf := make([]byte, p.total)
	size := (p.total + p.count - 1) / p.count
	for i, c := range p.chunks {
		copy(buf[i*size:], c)
	}
	topic := unsafe.Slice(unsafe.StringData(p.topic), len(p.topic))
	return buf, hashMessageID(p.origin, p.first, p.created, topic, buf) == p.id
}

// message is the whole message of a complete, verified p.
func (p *partial) message(payload []byte) Message {
	return Message{ID: p.id, Origin: p.origin, Seq: p.first, Created: timeFromMillis(p.created), Topic: p.topic, Payload: payload}
}

// partials are the large messages being reassembled, under a memory bound.
type partials struct {
	byID  map[MessageID]*partial
	list  []*partial // in order of opening: deterministic iteration
	gone  int        // entries of list that are gone
	bytes int        // the cost of the live ones
	max   int
}

func (s *partials) find(id MessageID) *partial {
	if s.byID == nil {
		return nil
	}
	return s.byID[id]
}

func (s *partials) fits(cost int) bool { return s.bytes+cost <= s.max }

// open starts a partial for the chunk wm, whose topic is topic; it must fit.
func (s *partials) open(wm *wireMessage, topic string, deadline time.Time) *partial {
	h := &wm.chunk
	p := &partial{
		id: h.whole, origin: wm.origin, first: wm.seq - uint64(h.index), created: wm.created, topic: topic,
		count: h.count, total: h.total, chunks: make([][]byte, h.count), cost: partialCost(h), deadline: deadline,
	}
	if s.byID == nil {
		s.byID = make(map[MessageID]*partial)
	}
	s.byID[p.id] = p
	s.list = append(s.list, p)
	s.bytes += p.cost
	return p
}

func (s *partials) remove(p *partial) {
	s.forget(p)
	if s.gone > 16 && s.gone*2 > len(s.list) {
		s.compact()
	}
}

// forget is remove without compacting the list, for use while iterating it.
func (s *partials) forget(p *partial) {
	if p.gone {
		return
	}
	p.gone = true
	p.chunks = nil
	delete(s.byID, p.id)
	s.bytes -= p.cost
	s.gone++
}

func (s *partials) compact() {
	kept := s.list[:0]
	for _, p := range s.list {
		if !p.gone {
			kept = append(kept, p)
		}
	}
	clear(s.list[len(kept):])
	s.list, s.gone = kept, 0
}

// oldest returns the first live partial, or nil.
func (s *partials) oldest() *partial {
	for _, p := range s.list {
		if !p.gone {
			return p
		}
	}
	return nil
}

func (s *partials) len() int { return len(s.list) - s.gone }

// Reassembler turns message encodings, such as the entries of the message
// log in log order, back into whole messages: an unchunked message comes out
// at once, a large message when the last of its chunks goes in. A whole
// message thus takes the position of its last chunk, as the gossip core
// delivers it when its last chunk arrives. Each whole message comes out once,
// after its payload is checked against its ID.
//
// Chunks of messages that never complete are held until the memory bound
// forces the oldest out; Dropped counts those. A Reassembler is not safe for
// concurrent use.
type Reassembler struct {
	partials partials
	done     map[MessageID]struct{}
	dropped  int
}

// NewReassembler returns a Reassembler that holds at most maxBytes of
// partial messages (payload reserved in full plus bookkeeping, as the core
// counts them); at least twice the largest message it must reassemble.
func NewReassembler(maxBytes int) *Reassembler {
	return &Reassembler{partials: partials{max: maxBytes}}
}

// Add takes one message encoding. It returns an unchunked message at once
// (ok), a whole message when enc is its last missing chunk (ok), and ok=false
// while a message is incomplete or when enc adds nothing (a statement, a chunk of a
// message already reassembled, or one that does not fit the bound). The
// returned Message's Payload aliases enc for an unchunked message and is
// freshly allocated for a reassembled one; chunks are kept, so enc must not
// be modified afterwards. Errors: malformed encodings (wire.ErrMalformed,
// wire.ErrTruncated, ...), a chunk that disagrees with its message
// (ErrChunkInconsistent), and a message whose chunks do not hash to its ID
// (ErrChunkMismatch; the message is discarded).
func (r *Reassembler) Add(enc []byte) (Message, bool, error) {
	wm, rest, err := decodeMessage(enc)
	if err != nil {
		return Message{}, false, err
	}
	if len(rest) != 0 {
		return Message{}, false, wire.ErrTrailingBytes
	}
	if wm.isStatement() {
		return Message{}, false, nil // verification's, not the application's
	}
	h := &wm.chunk
	if h.count == 0 {
		m, err := ParseMessage(enc)
		return m, err == nil, err
	}
	if _, ok := r.done[h.whole]; ok {
		return Message{}, false, nil
	}
	s := &r.partials
	p := s.find(h.whole)
	if p == nil {
		cost := partialCost(h)
		if cost > s.max {
			r.dropped++
			return Message{}, false, nil
		}
		for !s.fits(cost) {
			s.remove(s.oldest())
			r.dropped++
		}
		p = s.open(&wm, string(wm.topic), time.Time{})
	} else if !p.matches(&wm) { // first: it checks the count that bounds the index
		return Message{}, false, fmt.Errorf("%w: chunk %d of %d of %v", ErrChunkInconsistent, h.index, h.count, h.whole)
	} else if held := p.chunks[h.index]; held != nil {
		if bytes.Equal(held, wm.payload) {
			return Message{}, false, nil // the same chunk again
		}
		return Message{}, false, fmt.Errorf("%w: chunk %d of %d of %v", ErrChunkInconsistent, h.index, h.count, h.whole)
	}
	p.put(h.index, wm.payload)
	if p.have < p.count {
		return Message{}, false, nil
	}
	payload, ok := p.assemble()
	s.remove(p)
	if r.done == nil {
		r.done = make(map[MessageID]struct{})
	}
	r.done[p.id] = struct{}{}
	if !ok {
		return Message{}, false, fmt.Errorf("%w: %v", ErrChunkMismatch, p.id)
	}
	return p.message(payload), true, nil
}

// Partial returns the number of incomplete messages held and their cost
// against the memory bound.
func (r *Reassembler) Partial() (messages, bytes int) { return r.partials.len(), r.partials.bytes }

// Dropped is the number of incomplete messages given up to stay within the
// memory bound.
func (r *Reassembler) Dropped() int { return r.dropped }
