package node

import (
	"net/netip"
	"time"
)

// Datagrams that fail to open are dropped and counted (Stats.Drops). A
// peer whose datagrams keep failing is almost always misconfigured: another
// passphrase or cluster name, no passphrase at all, another cipher suite,
// or a clock off by more than the replay window. The counter alone leaves an operator guessing
// which peer; so the node also logs a WARN naming it, at most once per
// authWarnEvery per address, and at most authWarnBurst such lines per
// authWarnEvery in all (forged source addresses must not flood the log).

const (
	authWarnEvery  = time.Minute
	authWarnBurst  = 10
	authWarnAfter  = 3 // failures from one address before the first WARN: one could be noise
	authWarnMaxLen = 1 << 12
)

// authWarnHints say what a drop reason most likely means.
var authWarnHints = map[string]string{
	"unknown_key":  "sealed with a key this agent does not have: wrong passphrase or cluster name?",
	"auth_failed":  "failed authentication: wrong passphrase or cluster name, or tampered with?",
	"plaintext":    "not encrypted, and this agent has a passphrase: the peer has none (--passphrase-file)?",
	"sealed":       "encrypted, and this agent has no passphrase (--passphrase-file)?",
	"stale":        "timestamped too far from this clock: clocks further apart than --replay-window?",
	"wrong_cipher": "sealed with another cipher suite: the agents' --cipher differs?",
}

// authWarner decides when to warn about an address's failing datagrams.
// Under the node's lock.
type authWarner struct {
	peers       map[netip.AddrPort]*authFailures
	windowStart time.Time
	inWindow    int // WARNs logged since windowStart
}

type authFailures struct {
	count    uint64 // failures since the last WARN
	lastWarn time.Time
}

// failed records a datagram from a that failed to open for reason, and
// reports whether to warn now, with the failures to report.
func (w *authWarner) failed(a netip.AddrPort, reason string, now time.Time) (warn bool, count uint64) {
	if _, ok := authWarnHints[reason]; !ok {
		return false, 0 // replays and truncations are not a misconfiguration
	}
	if w.peers == nil || len(w.peers) >= authWarnMaxLen {
		w.peers = map[netip.AddrPort]*authFailures{}
	}
	f := w.peers[a]
	if f == nil {
		f = &authFailures{}
		w.peers[a] = f
	}
	f.count++
	if f.count < authWarnAfter || (!f.lastWarn.IsZero() && now.Sub(f.lastWarn) < authWarnEvery) {
		return false, 0
	}
	if now.Sub(w.windowStart) >= authWarnEvery {
		w.windowStart, w.inWindow = now, 0
	}
	if w.inWindow >= authWarnBurst {
		return false, 0
	}
	w.inWindow++
	count, f.count, f.lastWarn = f.count, 0, now
	return true, count
}

// authFailedLocked counts a datagram from a that failed to open, and warns
// when it is time to.
func (n *Node) authFailedLocked(a netip.AddrPort, reason string, now time.Time) {
	n.drops[reason]++
	if warn, count := n.authWarn.failed(a, reason, now); warn {
		n.logger.Warn("datagrams from a peer dropped: "+authWarnHints[reason], "peer", a.String(), "reason", reason,
			"dropped", count, "next_warning_after", authWarnEvery.String())
	}
}
