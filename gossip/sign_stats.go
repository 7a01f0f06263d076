package gossip

// SignStats are the counters (since New) and gauges (now) of origin
// signatures, apart from Stats, whose drop reasons count what failed.
type SignStats struct {
	StatementsOut   uint64 // statements this node signed
	StatementsIn    uint64 // statements received whose signature verified, each once
	Pending         uint64 // messages held back for a statement (each candidate once)
	Verified        uint64 // messages a verified statement covered, then accepted
	RangeMismatches uint64 // ranges whose candidates did not hash to the signed hash (a forgery in them)
	Penalties       uint64 // offences charged to peers (penalty.go)

	PendingNow  int // messages held back now
	PeersBanned int // peers not pulled from now for their offences
}

// SignStats returns the core's signature counters and gauges.
func (c *Core) SignStats() SignStats {
	s := c.signStats
	s.PendingNow = c.pend.count
	s.PeersBanned = c.penalties.banned(c.round)
	return s
}
