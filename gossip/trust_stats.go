package gossip

// TrustStats are the counters (since New) and gauges (now) of origin
// signatures and application validation, apart from Stats, whose drop
// reasons count what failed.
type TrustStats struct {
	StatementsOut   uint64 // statements this node signed
	StatementsIn    uint64 // statements received whose signature verified, each once
	AwaitedKey      uint64 // keyless statements that waited for their origin's key (keys.go)
	Pending         uint64 // messages held back for a statement (each candidate once)
	Verified        uint64 // messages a verified statement covered, then accepted
	RangeMismatches uint64 // ranges whose candidates did not hash to the signed hash (a forgery in them)
	Penalties       uint64 // offences charged to peers (penalty.go)
	Rejected        uint64 // messages the validator rejected (validate.go)
	Ignored         uint64 // messages the validator ignored

	PendingNow  int // messages held back now for a statement
	AwaitingNow int // messages waiting for the validator's verdict now
	PeersBanned int // peers not pulled from now for their offences
}

// TrustStats returns the core's signature and validation counters and gauges.
func (c *Core) TrustStats() TrustStats {
	s := c.trustStats
	s.PendingNow = c.pend.count
	s.AwaitingNow = len(c.verdicts.waiting)
	s.PeersBanned = c.penalties.banned(c.round)
	return s
}
