package gossip

import (
	"net/netip"
	"slices"
)

// Statements go only to peers that understand them: a node that predates
// them drops a whole MESSAGES datagram holding one as malformed. A peer
// announces it in each of its pulls (PullRequest.Statements); this node
// keeps, per peer, what its latest pull said, and leaves statements out of
// everything it sends the others — answers, parked sends, anti-entropy
// pushes and fetch answers (answer.addEncoded). Those get the messages a
// statement covers unverified, as they would from an origin that does not
// sign.

// A node announces statements when it signs, or once a peer has announced
// them: a cluster where no node signs pulls as before the option, byte for
// byte, and in one where some do every node that knows statements soon
// announces them, so that those that do not sign relay statements too.

// announcesStatements reports whether this node's pulls announce
// statements.
func (c *Core) announcesStatements() bool {
	return !c.cfg.predatesStatements && (c.signing() || c.stmtsHeard)
}

// notePullStatements records what a pull from peer announced.
func (c *Core) notePullStatements(peer netip.AddrPort, understands bool) {
	c.stmtPeers.note(peer, understands)
	c.stmtsHeard = c.stmtsHeard || understands
}

// maxStatementPeers bounds the peers remembered as understanding
// statements. Past it the longest remembered is forgotten: it gets no
// statements until its next pull, whose answer brings what it lacks.
const maxStatementPeers = 256

// statementPeers lists the peers whose latest pull announced statements,
// the least recently announced first. A list, not a map: few peers pull a
// node, and the simulator runs a million cores.
type statementPeers []netip.AddrPort

// note records what peer's latest pull announced.
func (sp *statementPeers) note(peer netip.AddrPort, understands bool) {
	i := slices.Index(*sp, peer)
	switch {
	case understands && i < 0:
		if len(*sp) == maxStatementPeers {
			*sp = slices.Delete(*sp, 0, 1)
		}
		*sp = append(*sp, peer)
	case !understands && i >= 0:
		*sp = slices.Delete(*sp, i, i+1)
	}
}

// understands reports whether peer's latest pull announced statements.
func (sp statementPeers) understands(peer netip.AddrPort) bool {
	return slices.Contains(sp, peer)
}

// isStatementEncoding reports whether enc, one message's encoding, is a
// statement's; without decoding it whole.
func isStatementEncoding(enc []byte) bool {
	if len(enc) < 16 {
		return false
	}
	b := enc[16:]
	for range 2 { // seq, created
		var err error
		if _, b, err = readUvarint(b); err != nil {
			return false
		}
	}
	return len(b) >= 2 && b[0] == 0 && (b[1] == kindStatement || b[1] == kindKeylessStatement)
}
