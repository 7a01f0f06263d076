package simulations

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// The scenarios are Runs set up to show one property of the protocol each.
// Each takes a Config for everything else (nodes, fanout, loss, latency,
// seed...) and fills in its own part when cfg leaves it unset. Their tests
// in scenarios_test.go assert what each shows.

// Broadcast publishes cfg.Messages messages and runs until every node holds
// them. It shows how fast pull gossip reaches every node, and at what cost
// (duplicates and bytes per node), against the mean-field expectation of
// the core's pull schedule (TheorySpread): with fanout 3 and no loss, about
// log8(N) rounds, within log4(N) + log4(ln N) + 3. Loss slows the spread
// but does not stop it: a lost pull or answer is one pull of the next
// sub-round.
func Broadcast(cfg Config) (Report, error) { return Run(cfg) }

// DefaultPartition is the partition PartitionAndHeal applies when cfg
// leaves it unset: half the nodes cut off from the publication until 2
// seconds (10 rounds of 200ms) after it.
var DefaultPartition = Partition{At: 0, Heal: 2 * time.Second, Split: 0.5}

// PartitionAndHeal splits the network (cfg.Partition, default
// DefaultPartition), publishes in the first group, and heals. It shows that
// gossip alone heals a partition shorter than the life of a message in the
// propagation caches (CacheRounds rounds, 30 × 200ms = 6s by default, from
// when each node received it): the second group receives nothing while
// partitioned, and everything within a few rounds of the heal. A partition
// that outlasts the caches leaves the second group without the message for
// good, unless Merkle anti-entropy runs (Config.AntiEntropy) to repair it.
func PartitionAndHeal(cfg Config) (Report, error) {
	if cfg.Partition == nil {
		p := DefaultPartition
		cfg.Partition = &p
	}
	if len(cfg.Publishers) == 0 {
		// Distinct nodes of the first group, drawn from the seed.
		m := max(cfg.Messages, 1)
		first := int(cfg.Partition.split() * float64(cfg.Nodes))
		if m > first {
			return Report{}, fmt.Errorf("simulations: %d messages from a first group of %d nodes", m, first)
		}
		rng := rand.New(rand.NewPCG(cfg.Seed, 0x7075626c)) // "publ"
		cfg.Publishers = rng.Perm(first)[:m]
	}
	return Run(cfg)
}

// DefaultCrash is the churn CrashAndRestart applies when cfg leaves it
// unset: a fifth of the nodes crash at the publication, before the message
// reaches them, and restart without state 2 seconds later.
var DefaultCrash = Churn{Crash: 0.2, CrashAt: 0, Restart: RestartStateless, RestartAt: 2 * time.Second}

// CrashAndRestart crashes a share of the nodes and restarts them
// (cfg.Churn, default DefaultCrash). It shows that a node restarting while
// the messages it missed are still in its peers' caches receives them,
// with or without its state; that a node restarting stateless delivers
// again what it had delivered before the crash (counted in
// Report.Redelivered), where a stateful one does not; and that nodes
// restarting after the caches have let a message go never receive it
// without anti-entropy (Config.AntiEntropy, off by default; with it they
// are repaired). Nodes down at the end are not
// counted as missing anything.
func CrashAndRestart(cfg Config) (Report, error) {
	if cfg.Churn == nil {
		c := DefaultCrash
		cfg.Churn = &c
	}
	return Run(cfg)
}

// DefaultJoin is the churn LateJoin applies when cfg leaves it unset: a
// tenth of the nodes join 2 seconds after the publication.
var DefaultJoin = Churn{Join: 0.1, JoinAt: 2 * time.Second}

// LateJoin keeps a share of the nodes out until after the publication
// (cfg.Churn, default DefaultJoin). It shows that a node joining while a
// message is still cached receives it within a few rounds, and one joining
// later does not: history older than the caches is anti-entropy's job.
func LateJoin(cfg Config) (Report, error) {
	if cfg.Churn == nil {
		c := DefaultJoin
		cfg.Churn = &c
	}
	return Run(cfg)
}

// DefaultSkew is the clock skew SkewedClocks applies when cfg leaves it unset:
// every clock off by up to 10 seconds either way, so two clocks differ by at
// most 20s, within the core's default ClockSkew tolerance of 30s.
var DefaultSkew = UniformSkew{Max: 10 * time.Second}

// SkewedClocks offsets every node's clock (cfg.Skew, default DefaultSkew). It
// shows that skew within the core's ClockSkew tolerance changes nothing,
// and that a node whose clock is more than ClockSkew behind a message's
// origin refuses it as from_future (and, more than MaxAge ahead, as
// too_old): such nodes never deliver it, and the drops are counted in
// Report.Totals.Dropped. The other nodes deliver it all the same.
func SkewedClocks(cfg Config) (Report, error) {
	if cfg.Skew == nil {
		sk := DefaultSkew
		sk.Seed = cfg.Seed
		cfg.Skew = sk
	}
	return Run(cfg)
}
