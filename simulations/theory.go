package simulations

import "math"

// TheorySubRounds returns, for rounds 0 to rounds, the fraction of n nodes
// expected to hold a message published by one of them at round 0, by the
// mean-field model of the core's pulls: a round is fanout sub-rounds of
// one pull per node (the core spreads its pulls evenly across the round),
// and in a sub-round each node lacking the message gets it if the one peer
// it pulls from has it. With i of n nodes holding it, a sub-round brings
// i' = i + (n−i)·i/n: the fraction lacking it, q, becomes q². With loss,
// a pull succeeds only if the request and the answer both arrive, with
// probability s = (1−loss)², and i' = i + s·(n−i)·i/n.
func TheorySubRounds(n, fanout int, loss float64, rounds int) []float64 {
	f := make([]float64, rounds+1)
	if n < 1 {
		return f
	}
	s := (1 - loss) * (1 - loss)
	x := 1 / float64(n)
	f[0] = x
	for r := 1; r <= rounds; r++ {
		for k := 0; k < fanout; k++ {
			x += s * (1 - x) * x
		}
		f[r] = x
	}
	return f
}

// TheoryClassicPull is TheorySubRounds for the textbook pull gossip, in which
// each node pulls from fanout peers at once at every round: a node lacking
// the message still lacks it after the round if all fanout peers did, so
// the fraction lacking it, q, becomes q^(fanout+1) per round; with loss,
// q·(1 − s·(1−q))^fanout, s = (1−loss)². Spreading the pulls over the
// round, as the core does, is faster: each pull already serves what the
// previous one brought.
func TheoryClassicPull(n, fanout int, loss float64, rounds int) []float64 {
	f := make([]float64, rounds+1)
	if n < 1 {
		return f
	}
	s := (1 - loss) * (1 - loss)
	q := 1 - 1/float64(n)
	f[0] = 1 - q
	for r := 1; r <= rounds; r++ {
		q *= math.Pow(1-s*(1-q), float64(fanout))
		f[r] = 1 - q
	}
	return f
}

// TheoryAsyncPull is TheorySubRounds for pulls as the core really makes
// them: each node pulls once per sub-round at its own phase, and a pull
// sees the nodes informed earlier in the same sub-round. A node's state is
// decided by its last pull; with g(φ) the probability that the node of
// phase φ lacked the message after its last pull, the fraction lacking it
// is q = mean(g), and the node's next pull updates g(φ) ← g(φ)·(1 − s·(1−q)).
// Early on the informed fraction grows by e (not 2) per sub-round, about
// 20 times per round at fanout 3; at the end q falls double-exponentially.
// It is computed with 256 phases per sub-round, and the simulation follows
// it closely.
func TheoryAsyncPull(n, fanout int, loss float64, rounds int) []float64 {
	const phases = 256
	f := make([]float64, rounds+1)
	if n < 1 {
		return f
	}
	s := (1 - loss) * (1 - loss)
	g := make([]float64, phases)
	q := 1 - 1/float64(n)
	for i := range g {
		g[i] = q
	}
	f[0] = 1 - q
	for r := 1; r <= rounds; r++ {
		for k := 0; k < fanout; k++ {
			for i, old := range g {
				g[i] = old * (1 - s*(1-q))
				q += (g[i] - old) / phases
			}
		}
		f[r] = 1 - max(q, 0)
	}
	return f
}

// PullBound is log4(n) + log4(ln n): about the number of rounds pull gossip
// with fanout 3 takes to reach n nodes (Karp et al. 2000).
func PullBound(n int) float64 {
	return math.Log(float64(n))/math.Log(4) + math.Log(math.Log(float64(n)))/math.Log(4)
}
