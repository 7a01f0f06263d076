package node

import "fmt"

// Readiness: a node is alive once it runs (/healthz), and ready (/readyz)
// once it can serve what a client expects of a cluster member: it has
// peers, and anti-entropy has compared its log with a peer's at least once,
// so that what it missed while down is known and being fetched. Probes
// (Kubernetes, Docker) send traffic or count a node in only when ready.

// Ready reports whether the node is ready, and if not, why, in a few
// words: not started, no peers, or the first anti-entropy session not
// ended yet. A node with anti-entropy off needs only peers.
func (n *Node) Ready() (ready bool, reason string) {
	n.mu.Lock()
	started, closed := !n.started.IsZero(), n.closed
	n.mu.Unlock()
	switch {
	case closed:
		return false, "node shutting down"
	case !started:
		return false, "node not started"
	case len(n.Peers()) == 0:
		return false, "no peers (see --peers, --join, --registry)"
	}
	if done, why := n.firstAntiEntropyDone(); !done {
		return false, why
	}
	return true, ""
}

// firstAntiEntropyDone reports whether an anti-entropy session has ended
// with the logs compared (or anti-entropy is off). Once true it stays so.
func (n *Node) firstAntiEntropyDone() (bool, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.aeCompared || n.core.Config().AEInterval < 0 {
		return true, ""
	}
	st := n.core.Stats()
	if st.AESessions-st.AEFailures-uint64(st.AERunning) > 0 {
		n.aeCompared = true
		return true, ""
	}
	return false, fmt.Sprintf("first anti-entropy pass not finished (%d sessions started, %d failed, every %s)",
		st.AESessions, st.AEFailures, n.core.Config().AEInterval)
}
