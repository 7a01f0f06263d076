package node

import (
	"net/netip"
	"time"
)

// sendLimits keeps a node from being used to flood others.
//
// Amplification (the rule of QUIC, RFC 9000 §8): to an address that is not a
// current member of the peer table, a node never sends more than three times
// the bytes it has received from that address. A forged pull from a
// stranger's address can then cost the victim at most three times what the
// forger sent. Members are trusted, but everyone — members too — is capped
// at maxPerRound bytes per round.
type sendLimits struct {
	members     map[netip.AddrPort]struct{}
	peers       func() []netip.AddrPort // the registry, to refresh members
	refreshed   time.Time
	strangers   map[netip.AddrPort]*strangerBytes
	maxPerRound int
	roundSent   map[netip.AddrPort]int
	round       time.Duration
	roundStart  time.Time
}

type strangerBytes struct{ in, out int }

// maxStrangers bounds the accounting; past it the table is cleared. That
// forgets what strangers sent as well as what they were sent, so it never
// lets one be sent more than three times its bytes since the reset.
const maxStrangers = 1 << 16

func newSendLimits(maxPerRound int, round time.Duration, peers func() []netip.AddrPort) sendLimits {
	return sendLimits{members: map[netip.AddrPort]struct{}{}, strangers: map[netip.AddrPort]*strangerBytes{},
		maxPerRound: maxPerRound, roundSent: map[netip.AddrPort]int{}, round: round, peers: peers}
}

// memberRefresh bounds how often an unknown address makes us re-read the
// registry: a peer added there is a member within this long, and a flood
// from strangers costs at most this many registry reads per second.
const memberRefresh = 100 * time.Millisecond

func (l *sendLimits) isMember(a netip.AddrPort, now time.Time) bool {
	if _, ok := l.members[a]; ok {
		return true
	}
	if now.Sub(l.refreshed) < memberRefresh {
		return false
	}
	l.refreshed = now
	clear(l.members)
	for _, p := range l.peers() {
		l.members[p] = struct{}{}
	}
	_, ok := l.members[a]
	return ok
}

// received records size bytes received from a.
func (l *sendLimits) received(a netip.AddrPort, size int, now time.Time) {
	if l.isMember(a, now) {
		return
	}
	s := l.strangers[a]
	if s == nil {
		if len(l.strangers) >= maxStrangers {
			clear(l.strangers)
		}
		s = &strangerBytes{}
		l.strangers[a] = s
	}
	s.in += size
}

// allow reports why size bytes may not be sent to a now, or "" if they may,
// and then counts them. A request of our own (not an answer) is exempt from
// the amplification rule, not from the round cap.
func (l *sendLimits) allow(a netip.AddrPort, size int, now time.Time, request bool) string {
	if now.Sub(l.roundStart) >= l.round {
		clear(l.roundSent)
		l.roundStart = now
	}
	if l.roundSent[a]+size > l.maxPerRound {
		return "peer_round_cap"
	}
	if !request && !l.isMember(a, now) {
		s := l.strangers[a]
		if s == nil || s.out+size > 3*s.in {
			return "amplification"
		}
		s.out += size
	}
	l.roundSent[a] += size
	return ""
}
