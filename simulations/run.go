package simulations

import (
	"fmt"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/transport"
)

// Report is the outcome of a Run.
type Report struct {
	// Config is the configuration the run used, defaults filled in.
	Config Config
	// Publishers are the nodes that published the messages, one each.
	Publishers []int
	// Rounds has one row per gossip round from the publication, starting
	// with round 0, the publication itself.
	Rounds []Round

	// RoundsToFull is the round from whose end on every node up held every
	// message until the run ended; -1 if the run ended otherwise.
	RoundsToFull int
	// DeliveryLatency is how long after the publication each node up
	// delivered each message, in virtual time, measured at the deliveries
	// themselves: its Full is the time to full delivery to the
	// millisecond, where RoundsToFull counts whole rounds.
	DeliveryLatency DeliveryLatency
	// Delivered is the fraction of (node up, message) pairs delivered at
	// the end.
	Delivered float64
	// NodesUp is the number of nodes up at the end, Missing the number of
	// those lacking at least one message.
	NodesUp, Missing int
	// Redelivered counts deliveries of a message to a node that had
	// delivered it before, as nodes restarting without their seen filter
	// do. Zero otherwise: delivery is exactly once.
	Redelivered uint64
	// Ended says why the run stopped: "delivered", "duration", "idle" (no
	// delivery for CacheRounds+1 rounds, plus three anti-entropy intervals
	// with AntiEntropy: nothing more can arrive) or "max-rounds".
	Ended string

	// Totals are the cores' counters over the run, from the publication
	// on; Network the network's.
	Totals  gossip.Stats
	Network transport.NetworkStats
	// Virtual is the virtual time from the publication to the end; Wall
	// the wall-clock time of the whole run, building the nodes included
	// and the memory measurement's collections excluded.
	Virtual, Wall time.Duration
	// Memory is filled in when Config.MeasureMemory is set.
	Memory *MemoryReport
	// DHT describes the nodes' DHT tables, with the DHT peer model.
	DHT *DHTReport
}

// Round is the state at the end of one gossip round. Counts are for the
// round alone.
type Round struct {
	Round int
	// Time is the virtual time since the publication.
	Time time.Duration
	// Delivered is the fraction of (node up, message) pairs delivered.
	Delivered float64
	// NodesUp is the number of nodes up.
	NodesUp int
	// MessagesSent counts message copies sent in answers to pulls.
	MessagesSent uint64
	// BytesSent counts every byte sent: pulls and answers.
	BytesSent uint64
	// Datagrams counts the datagrams sent.
	Datagrams uint64
	// Duplicates counts copies received by nodes that already held them.
	Duplicates uint64
	// TheorySubRounds, TheoryClassic and TheoryAsync are the fractions
	// delivered that three mean-field models predict for a message: see
	// TheorySubRounds, TheoryClassicPull and TheoryAsyncPull.
	TheorySubRounds, TheoryClassic, TheoryAsync float64
}

// DuplicatesPerNode is the number of duplicate copies received per node.
func (r *Report) DuplicatesPerNode() float64 {
	return float64(r.Totals.Duplicates) / float64(r.Config.Nodes)
}

// BytesPerNode is the number of bytes sent per node.
func (r *Report) BytesPerNode() float64 { return float64(r.Totals.BytesOut) / float64(r.Config.Nodes) }

// Dropped returns the messages and datagrams the cores dropped, by reason,
// leaving out the reasons with none.
func (r *Report) Dropped() map[string]uint64 {
	d := make(map[string]uint64)
	for _, reason := range gossip.DropReasons() {
		if n := r.Totals.Dropped[reason]; n > 0 {
			d[reason.String()] = n
		}
	}
	return d
}

// Run builds a simulation from cfg, lets it warm up, publishes
// cfg.Messages messages at once from distinct random nodes, applies the
// partition and the churn of cfg at their times, and runs round by round
// until every node up holds every message and no partition or churn event
// is pending, or until cfg.Duration has passed, or until nothing more can
// be delivered, or until cfg.MaxRounds.
func Run(cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	var mem *memoryProbe
	if cfg.MeasureMemory {
		mem = newMemoryProbe()
		progress := cfg.Progress
		cfg.Progress = func(p Progress) {
			mem.sample()
			if progress != nil {
				progress(p)
			}
		}
	}
	began := time.Now() // after the memory probe's collection
	s, err := New(cfg)
	if err != nil {
		return Report{}, err
	}
	cfg = s.Config()
	s.warmUp()
	var dhtReport *DHTReport
	if st, ok := s.DHTStats(); ok {
		dhtReport = &DHTReport{Published: st}
	}

	publishers := cfg.Publishers
	if len(publishers) == 0 {
		publishers = s.sample(cfg.Messages, s.Up)
		if len(publishers) < cfg.Messages {
			return Report{}, fmt.Errorf("simulations: %d messages but only %d nodes up to publish them", cfg.Messages, len(publishers))
		}
	}
	payload := make([]byte, cfg.PayloadSize)
	for m, p := range publishers {
		for k := range payload {
			payload[k] = byte(m + k)
		}
		if _, err := s.Publish(p, defaultTopic, payload); err != nil {
			return Report{}, err
		}
	}
	published := s.Now()
	s.scheduleScenario(published, publishers)

	interval := cfg.Gossip.Interval
	lastRound := cfg.MaxRounds
	if cfg.Duration > 0 {
		lastRound = int((cfg.Duration + interval - 1) / interval)
	}
	subRounds := TheorySubRounds(s.NodesUp(), cfg.Gossip.Fanout, cfg.Loss, lastRound)
	classic := TheoryClassicPull(s.NodesUp(), cfg.Gossip.Fanout, cfg.Loss, lastRound)
	async := TheoryAsyncPull(s.NodesUp(), cfg.Gossip.Fanout, cfg.Loss, lastRound)

	rep := Report{Config: cfg, Publishers: publishers, RoundsToFull: -1}
	first, firstNet := s.Totals(), s.NetworkStats()
	prev := first
	fullSince := -1
	lastAccepted, idle := s.accepted, 0
	// Idle: no node accepted anything for as long as a message stays cached
	// and, with anti-entropy, three of its intervals more (it repairs what
	// gossip gave up on).
	idleLimit := cfg.Gossip.CacheRounds
	if cfg.AntiEntropy && cfg.Gossip.AEInterval > 0 {
		idleLimit += 3 * int((cfg.Gossip.AEInterval+interval-1)/interval)
	}
	for r := 0; ; r++ {
		s.RunUntil(published + time.Duration(r)*interval)
		totals := s.Totals()
		row := Round{
			Round:           r,
			Time:            time.Duration(r) * interval,
			Delivered:       s.deliveredFraction(),
			NodesUp:         s.NodesUp(),
			MessagesSent:    totals.MessagesOut - prev.MessagesOut,
			BytesSent:       totals.BytesOut - prev.BytesOut,
			Datagrams:       totals.DatagramsOut - prev.DatagramsOut,
			Duplicates:      totals.Duplicates - prev.Duplicates,
			TheorySubRounds: subRounds[min(r, lastRound)],
			TheoryClassic:   classic[min(r, lastRound)],
			TheoryAsync:     async[min(r, lastRound)],
		}
		rep.Rounds = append(rep.Rounds, row)
		prev = totals
		full := s.AllDelivered()
		switch {
		case !full:
			fullSince = -1
		case fullSince < 0:
			fullSince = r
		}
		if s.accepted != lastAccepted {
			lastAccepted, idle = s.accepted, 0
		} else {
			idle++
		}
		if mem != nil {
			mem.sample()
		}
		if cfg.Progress != nil && r > 0 {
			cfg.Progress(Progress{Phase: "run", Round: r, MaxRounds: lastRound, Delivered: row.Delivered})
		}
		pending := s.PendingEvents() > 0
		switch {
		case cfg.Duration > 0:
			if r >= lastRound {
				rep.Ended = "duration"
			}
		case full && !pending:
			rep.Ended = "delivered"
		case idle > idleLimit && !pending:
			rep.Ended = "idle"
		case r >= lastRound:
			rep.Ended = "max-rounds"
		}
		if rep.Ended != "" {
			break
		}
	}
	if fullSince >= 0 {
		rep.RoundsToFull = fullSince
	}
	rep.Delivered = rep.Rounds[len(rep.Rounds)-1].Delivered
	rep.NodesUp, rep.Missing, rep.Redelivered = s.NodesUp(), s.Missing(), s.Redelivered()
	rep.DeliveryLatency = s.DeliveryLatency()
	rep.Totals = prev
	rep.Totals.Sub(first)
	rep.Network = subNetwork(s.NetworkStats(), firstNet)
	if dhtReport != nil {
		end, _ := s.DHTStats()
		dhtReport.Datagrams = end.Datagrams - dhtReport.Published.Datagrams
		dhtReport.Bytes = end.Bytes - dhtReport.Published.Bytes
		rep.DHT = dhtReport
	}
	rep.Virtual = s.Now() - published
	rep.Wall = time.Since(began)
	if mem != nil {
		rep.Memory = mem.report(cfg.Nodes, s)
	}
	return rep, nil
}

// warmUp runs the simulation for Config.Warmup from its start, reporting
// progress when the warm-up is longer than one Interval: with the DHT it
// is most of a run, and its first few hundred virtual milliseconds, when
// every table joins, most of the warm-up.
func (s *Simulator) warmUp() {
	const step = 10 * time.Millisecond
	warmup := s.cfg.Warmup
	if warmup <= s.cfg.Gossip.Interval || s.cfg.Progress == nil {
		s.RunUntil(warmup)
		return
	}
	for s.Now() < warmup {
		s.RunUntil(min(s.Now()+step, warmup))
		s.cfg.Progress(Progress{Phase: "warmup", Elapsed: s.Now(), Warmup: warmup})
	}
}

// deliveredFraction is the fraction of (node up, message) pairs delivered.
func (s *Simulator) deliveredFraction() float64 {
	if len(s.msgs) == 0 || s.nodesUp == 0 {
		return 0
	}
	sum := 0
	for m := range s.msgs {
		sum += s.msgs[m].deliveredUp
	}
	return float64(sum) / float64(len(s.msgs)*s.nodesUp)
}

// scheduleScenario schedules cfg's partition and churn, whose times count
// from published.
func (s *Simulator) scheduleScenario(published time.Duration, publishers []int) {
	// Events due at the publication take effect at once, not a
	// millisecond later.
	at := func(t time.Duration, fn func()) {
		if t <= s.Now() {
			fn()
		} else {
			s.At(t, fn)
		}
	}
	if p := s.cfg.Partition; p != nil {
		split := p.split()
		at(published+p.At, func() { s.Partition(split) })
		if p.Heal > 0 {
			at(published+p.Heal, s.Heal)
		}
	}
	c := s.cfg.Churn
	if c == nil {
		return
	}
	if len(s.late) > 0 {
		at(published+c.JoinAt, func() {
			for _, i := range s.late {
				_ = s.Start(i) // cannot fail: late joiners wait until now
			}
		})
	}
	if c.Crash > 0 {
		isPublisher := make(map[int]bool, len(publishers))
		for _, p := range publishers {
			isPublisher[p] = true
		}
		var crashed []int
		at(published+c.CrashAt, func() {
			k := int(c.Crash*float64(len(s.nodes)) + 0.5)
			crashed = s.sample(k, func(i int) bool { return s.Up(i) && !isPublisher[i] })
			for _, i := range crashed {
				_ = s.Crash(i) // cannot fail: sampled among the nodes up
			}
		})
		if c.Restart != NoRestart {
			at(published+c.RestartAt, func() {
				for _, i := range crashed {
					_ = s.Restart(i, c.Restart) // cannot fail: crashed above
				}
			})
		}
	}
}

func subNetwork(a, b transport.NetworkStats) transport.NetworkStats {
	return transport.NetworkStats{
		Sent:           a.Sent - b.Sent,
		Delivered:      a.Delivered - b.Delivered,
		Lost:           a.Lost - b.Lost,
		Partitioned:    a.Partitioned - b.Partitioned,
		Undeliverable:  a.Undeliverable - b.Undeliverable,
		BytesSent:      a.BytesSent - b.BytesSent,
		BytesDelivered: a.BytesDelivered - b.BytesDelivered,
	}
}
