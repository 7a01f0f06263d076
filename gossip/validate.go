package gossip

import (
	"bytes"
	"net/netip"
	"slices"
	"time"
)

// Application validation. With Config.Validate, a message the core is about
// to accept (its signature verified, when signing) waits instead for the
// caller's verdict: it is handed out in Ready.Validate, marked held in the
// digest (so it is not pulled again) but not cached, logged, delivered nor
// relayed, until the caller calls Verdict. Accepted, it is accepted like
// any other; rejected or ignored, its ID goes into the seen filter, so that
// it is never accepted, pulled or relayed, and a rejected one's sender is
// penalised. The core owns no goroutine: asking the application (an HTTP
// call, say) and retrying it is the caller's.

// Verdict is an application's decision on a message.
type Verdict int

// Verdicts.
const (
	// VerdictAccept: deliver and relay the message.
	VerdictAccept Verdict = iota + 1
	// VerdictReject: the message is invalid; whoever sent it is penalised.
	VerdictReject
	// VerdictIgnore: drop the message without penalty (not of interest,
	// or a duplicate by the application's own reckoning).
	VerdictIgnore
)

// String names the verdict.
func (v Verdict) String() string {
	switch v {
	case VerdictAccept:
		return "accept"
	case VerdictReject:
		return "reject"
	case VerdictIgnore:
		return "ignore"
	}
	return "unknown"
}

// MaxAwaiting bounds the messages waiting for a verdict; past it a message
// is dropped (DropValidationFull) and not marked held: pulled again later.
const MaxAwaiting = 16384

// verdicts are the messages waiting for a verdict, by ID.
type verdicts struct {
	waiting map[MessageID]*awaiting
}

// awaiting is one message waiting for its verdict: an encoding to accept,
// or, for a large message, the reassembled message to deliver (its chunks
// are relayed as they come; only the whole message waits).
type awaiting struct {
	enc   []byte
	whole *Message
	from  netip.AddrPort
	until time.Time // past it, too old to be accepted: dropped (expireVerdicts)
}

func (c *Core) validating() bool { return c.cfg.Validate }

// awaitVerdict holds an admissible, unseen message back for its verdict.
func (c *Core) awaitVerdict(wm *wireMessage, id MessageID) {
	v := &c.verdicts
	if _, ok := v.waiting[id]; ok {
		c.stats.Duplicates++
		c.held.add(wm.origin, wm.seq, c.round)
		return
	}
	if len(v.waiting) >= MaxAwaiting {
		c.drop(DropValidationFull, 1)
		return
	}
	if v.waiting == nil {
		v.waiting = make(map[MessageID]*awaiting)
	}
	enc := wm.privateRaw()
	a := &awaiting{enc: enc, from: c.from, until: c.expiry(wm.created)}
	v.waiting[id] = a
	c.held.add(wm.origin, wm.seq, c.round)
	e := c.newEntry(*wm, id, enc)
	c.out.Validate = append(c.out.Validate, e.msg)
}

// awaitWhole holds a reassembled large message back for its verdict.
func (c *Core) awaitWhole(m Message) {
	v := &c.verdicts
	if len(v.waiting) >= MaxAwaiting {
		c.drop(DropValidationFull, 1)
		return
	}
	if v.waiting == nil {
		v.waiting = make(map[MessageID]*awaiting)
	}
	v.waiting[m.ID] = &awaiting{whole: &m, from: c.from, until: m.Created.Add(c.cfg.MaxAge)}
	c.out.Validate = append(c.out.Validate, m)
}

// Verdict gives the application's verdict on a message handed out in
// Ready.Validate. A verdict on a message not waiting (decided already, or
// dropped as too old meanwhile) does nothing and reports false.
func (c *Core) Verdict(now time.Time, id MessageID, verdict Verdict) bool {
	c.begin()
	c.now, c.fromSub = now, false
	defer c.flushParked(now)
	v := &c.verdicts
	a, ok := v.waiting[id]
	if !ok {
		return false
	}
	delete(v.waiting, id)
	c.from = a.from
	switch verdict {
	case VerdictAccept:
		if a.whole != nil {
			c.out.Messages = append(c.out.Messages, *a.whole)
			c.stats.Delivered++
			c.stats.Reassembled++
			return true
		}
		wm, _, err := decodeMessage(a.enc)
		if err != nil {
			return true // decoded before it waited
		}
		wm.knownID, wm.private, wm.validated = id, true, true
		c.fromSub = c.isSubscription(a.from)
		if c.admissible(now, &wm) {
			c.acceptVerified(now, wm)
		}
	default:
		if verdict == VerdictReject {
			c.trustStats.Rejected++
			c.penalise(a.from)
		} else {
			c.trustStats.Ignored++
		}
		if a.whole == nil {
			// Remembered, so that it is never pulled or accepted again (a
			// whole large message's ID is in the filter already).
			if _, err := c.cfg.Filter.Add(id, a.until); err != nil {
				c.filterDrop(err)
			}
		}
	}
	return true
}

// Awaiting returns the messages waiting for a verdict, in no order: for
// a caller that lost track of them (its calls failed) to ask again.
func (c *Core) Awaiting() []MessageID {
	ids := make([]MessageID, 0, len(c.verdicts.waiting))
	for id := range c.verdicts.waiting {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b MessageID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// expireVerdicts drops, once a round, the messages that waited until they
// became too old to be accepted.
func (c *Core) expireVerdicts(now time.Time) {
	for id, a := range c.verdicts.waiting {
		if now.After(a.until) {
			delete(c.verdicts.waiting, id)
			c.drop(DropTooOld, 1)
		}
	}
}
