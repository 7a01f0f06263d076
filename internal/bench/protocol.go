package bench

// The node process protocol. With Config.Processes, the parent starts one
// process per node (ServeNode) and talks with it over its standard input
// and output, one line per message, words separated by one space:
//
//	parent → node process (commands)
//	node <JSON nodeSpec>        first: which node to run; answered by addr
//	peers <addr> <addr>...      every node's address, in index order, its
//	                            own included; answered by ready
//	publish <index>             publish message index, retrying while the
//	                            node refuses with backpressure
//	counters                    answered by counters
//	(end of input)              stop the node and exit
//
//	node process → parent (reports)
//	addr <127.0.0.1:port>       the node is bound
//	ready                       the node sees the whole cluster
//	published <index> <sent> <returned>
//	                            the publish of index that succeeded was
//	                            sent, and returned, at these times
//	delivered <index> <at> [<index> <at>]...
//	                            first arrivals of messages on the node, at
//	                            most maxDeliveriesPerLine a line
//	counters <JSON nodeCounters>
//
// Times are the machine's wall clock, in nanoseconds since the Unix epoch:
// the one clock every process on the machine shares. Anything else is an
// error: the node process exits with it, the parent stops the run naming
// the node.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/hearsay-io/hearsay/security"
)

// Bounds of the protocol's lines.
const (
	// maxDeliveriesPerLine bounds a delivered report: about 28 kB.
	maxDeliveriesPerLine = 1024
	// maxCommandLine bounds a command line: a node spec, or the peers of
	// MaxNodes nodes, fits with room to spare.
	maxCommandLine = 64 << 10
	// maxReportLine bounds a report line.
	maxReportLine = 256 << 10
)

// errProtocol is wrapped by every error of the protocol's parsers.
var errProtocol = errors.New("bench: node process protocol")

func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, args...)...)
}

// nodeSpec describes the one node a node process runs: the parts of Config
// a node needs, its index and the run's key.
type nodeSpec struct {
	System   System `json:"system"`
	Index    int    `json:"index"`
	Nodes    int    `json:"nodes"`
	Messages int    `json:"messages"`
	Size     int    `json:"size"`
	// IntervalNS is Config.Interval in nanoseconds.
	IntervalNS int64 `json:"interval_ns"`
	Fanout     int   `json:"fanout"`
	// LongPollNS is Config.LongPoll in nanoseconds, negative for off;
	// absent, the default.
	LongPollNS int64 `json:"long_poll_ns,omitempty"`
	// Key is the run's 32-byte key in hex; empty: plaintext.
	Key             string `json:"key,omitempty"`
	OriginSendsOnce bool   `json:"origin_sends_once,omitempty"`
	API             bool   `json:"api,omitempty"`
	Cipher          uint8  `json:"cipher,omitempty"` // security.Suite
	Sign            bool   `json:"sign,omitempty"`
}

// newNodeSpec describes node index of system's cluster in cfg.
func newNodeSpec(cfg Config, system System, key *security.Key, index int) nodeSpec {
	s := nodeSpec{System: system, Index: index, Nodes: cfg.Nodes, Messages: cfg.Messages, Size: cfg.Size,
		IntervalNS: int64(cfg.Interval), Fanout: cfg.Fanout, LongPollNS: int64(cfg.LongPoll), OriginSendsOnce: cfg.originSendsOnce, API: cfg.API, Cipher: uint8(cfg.Cipher), Sign: cfg.Sign}
	if key != nil {
		s.Key = hex.EncodeToString(key[:])
	}
	return s
}

// config checks the spec and returns the configuration and key its node
// is built with.
func (s nodeSpec) config() (Config, *security.Key, error) {
	cfg := Config{Nodes: s.Nodes, Messages: s.Messages, Size: s.Size, Rate: RateUnlimited,
		Interval: time.Duration(s.IntervalNS), Fanout: s.Fanout, LongPoll: time.Duration(s.LongPollNS), Systems: []System{s.System},
		Plaintext: s.Key == "", originSendsOnce: s.OriginSendsOnce, API: s.API, Cipher: security.Suite(s.Cipher), Sign: s.Sign}
	// Zeros would take defaults: a spec states everything.
	if s.Nodes == 0 || s.Messages == 0 || s.Size == 0 || s.IntervalNS == 0 || s.Fanout == 0 || s.System == "" {
		return Config{}, nil, protocolErrorf("node spec: system, nodes, messages, size, interval_ns and fanout are required")
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return Config{}, nil, protocolErrorf("node spec: %v", err)
	}
	if s.Index < 0 || s.Index >= s.Nodes {
		return Config{}, nil, protocolErrorf("node spec: index must be between 0 and %d, got %d", s.Nodes-1, s.Index)
	}
	if s.Key == "" {
		return cfg, nil, nil
	}
	raw, err := hex.DecodeString(s.Key)
	if err != nil || len(raw) != len(security.Key{}) {
		return Config{}, nil, protocolErrorf("node spec: key must be %d bytes in hex", len(security.Key{}))
	}
	key := new(security.Key)
	copy(key[:], raw)
	return cfg, key, nil
}

// nodeCounters is a counters report: a node's counters and its process's
// CPU time.
type nodeCounters struct {
	BytesOut          uint64            `json:"bytes_out"`
	HeaderBytes       uint64            `json:"header_bytes"`
	HeadersKnown      bool              `json:"headers_known"`
	Duplicates        uint64            `json:"duplicates"`
	Drops             map[string]uint64 `json:"drops"`
	BackpressureWaits uint64            `json:"backpressure_waits"`
	CPUNS             int64             `json:"cpu_ns"`
	CPUKnown          bool              `json:"cpu_known"`
}

func newNodeCounters(c counters) nodeCounters {
	return nodeCounters{BytesOut: c.bytesOut, HeaderBytes: c.headerBytes, HeadersKnown: c.headersKnown, Duplicates: c.duplicates, Drops: c.drops,
		BackpressureWaits: c.waits, CPUNS: int64(c.cpu), CPUKnown: c.cpuKnown}
}

func (n nodeCounters) counters() counters {
	c := counters{bytesOut: n.BytesOut, headerBytes: n.HeaderBytes, headersKnown: n.HeadersKnown, duplicates: n.Duplicates, drops: map[string]uint64{},
		waits: n.BackpressureWaits, cpu: time.Duration(n.CPUNS), cpuKnown: n.CPUKnown}
	for reason, count := range n.Drops {
		c.drops[reason] = count
	}
	return c
}

// commandKind is what a command asks.
type commandKind uint8

const (
	cmdNode commandKind = iota + 1
	cmdPeers
	cmdPublish
	cmdCounters
)

// command is one parsed command line.
type command struct {
	kind  commandKind
	spec  nodeSpec // cmdNode
	peers []string // cmdPeers
	index int      // cmdPublish
}

// appendCommand appends c's line, newline included, to dst.
func appendCommand(dst []byte, c command) ([]byte, error) {
	switch c.kind {
	case cmdNode:
		spec, err := json.Marshal(c.spec)
		if err != nil {
			return dst, err
		}
		dst = append(dst, "node "...)
		dst = append(dst, spec...)
	case cmdPeers:
		dst = append(dst, "peers"...)
		for _, p := range c.peers {
			dst = append(dst, ' ')
			dst = append(dst, p...)
		}
	case cmdPublish:
		return appendPublish(dst, c.index), nil
	case cmdCounters:
		dst = append(dst, "counters"...)
	default:
		return dst, fmt.Errorf("bench: no such command (%d)", c.kind)
	}
	return append(dst, '\n'), nil
}

// appendPublish appends a publish command: the parent's hot path.
func appendPublish(dst []byte, index int) []byte {
	dst = append(dst, "publish "...)
	dst = strconv.AppendInt(dst, int64(index), 10)
	return append(dst, '\n')
}

// parseCommand parses one command line, without its newline.
func parseCommand(line []byte) (command, error) {
	verb, rest, _ := bytes.Cut(line, []byte{' '})
	switch string(verb) {
	case "node":
		dec := json.NewDecoder(bytes.NewReader(rest))
		dec.DisallowUnknownFields()
		var c command
		if err := dec.Decode(&c.spec); err != nil {
			return command{}, protocolErrorf("node: bad spec: %v", err)
		}
		if len(bytes.TrimSpace(rest[dec.InputOffset():])) > 0 {
			return command{}, protocolErrorf("node: text after the spec")
		}
		c.kind = cmdNode
		return c, nil
	case "peers":
		words, err := splitWords(rest, "peers")
		if err != nil {
			return command{}, err
		}
		if len(words) == 0 || len(words) > MaxNodes {
			return command{}, protocolErrorf("peers: want 1 to %d addresses, got %d", MaxNodes, len(words))
		}
		c := command{kind: cmdPeers}
		for _, w := range words {
			addr, err := parseLoopback(w)
			if err != nil {
				return command{}, protocolErrorf("peers: %v", err)
			}
			c.peers = append(c.peers, addr)
		}
		return c, nil
	case "publish":
		words, err := splitWords(rest, "publish")
		if err != nil {
			return command{}, err
		}
		if len(words) != 1 {
			return command{}, protocolErrorf("publish: want a message index, got %d words", len(words))
		}
		index, err := parseIndex(words[0])
		if err != nil {
			return command{}, protocolErrorf("publish: %v", err)
		}
		return command{kind: cmdPublish, index: index}, nil
	case "counters":
		if len(line) != len("counters") {
			return command{}, protocolErrorf("counters: takes nothing")
		}
		return command{kind: cmdCounters}, nil
	}
	return command{}, protocolErrorf("unknown command %q", truncate(line))
}

// reportKind is what a report tells.
type reportKind uint8

const (
	repAddr reportKind = iota + 1
	repReady
	repPublished
	repDelivered
	repCounters
)

// report is one parsed report line.
type report struct {
	kind reportKind
	addr string // repAddr
	// repPublished: index was sent and returned at these times.
	index          int
	sent, returned int64
	deliveries     []delivery // repDelivered
	counters       nodeCounters
}

// delivery is a message's first arrival on a node: its index and the time,
// in nanoseconds since the Unix epoch.
type delivery struct {
	index int
	at    int64
}

// appendReport appends r's line, newline included, to dst.
func appendReport(dst []byte, r report) ([]byte, error) {
	switch r.kind {
	case repAddr:
		dst = append(dst, "addr "...)
		dst = append(dst, r.addr...)
	case repReady:
		dst = append(dst, "ready"...)
	case repPublished:
		dst = append(dst, "published "...)
		dst = strconv.AppendInt(dst, int64(r.index), 10)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, r.sent, 10)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, r.returned, 10)
	case repDelivered:
		if len(r.deliveries) == 0 || len(r.deliveries) > maxDeliveriesPerLine {
			return dst, fmt.Errorf("bench: a delivered report holds 1 to %d deliveries, not %d", maxDeliveriesPerLine, len(r.deliveries))
		}
		dst = append(dst, "delivered"...)
		for _, d := range r.deliveries {
			dst = appendDelivery(dst, d)
		}
	case repCounters:
		js, err := json.Marshal(r.counters)
		if err != nil {
			return dst, err
		}
		dst = append(dst, "counters "...)
		dst = append(dst, js...)
	default:
		return dst, fmt.Errorf("bench: no such report (%d)", r.kind)
	}
	return append(dst, '\n'), nil
}

// appendDelivery appends one " index at" pair of a delivered report.
func appendDelivery(dst []byte, d delivery) []byte {
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(d.index), 10)
	dst = append(dst, ' ')
	return strconv.AppendInt(dst, d.at, 10)
}

// parseReport parses one report line, without its newline, into r. It
// reuses r.deliveries.
func parseReport(line []byte, r *report) error {
	verb, rest, _ := bytes.Cut(line, []byte{' '})
	deliveries := r.deliveries[:0]
	*r = report{}
	switch string(verb) {
	case "addr":
		words, err := splitWords(rest, "addr")
		if err != nil {
			return err
		}
		if len(words) != 1 {
			return protocolErrorf("addr: want one address, got %d words", len(words))
		}
		addr, err := parseLoopback(words[0])
		if err != nil {
			return protocolErrorf("addr: %v", err)
		}
		*r = report{kind: repAddr, addr: addr}
	case "ready":
		if len(line) != len("ready") {
			return protocolErrorf("ready: takes nothing")
		}
		r.kind = repReady
	case "published":
		words, err := splitWords(rest, "published")
		if err != nil {
			return err
		}
		if len(words) != 3 {
			return protocolErrorf("published: want an index and two times, got %d words", len(words))
		}
		index, err := parseIndex(words[0])
		if err != nil {
			return protocolErrorf("published: %v", err)
		}
		sent, err1 := parseTime(words[1])
		returned, err2 := parseTime(words[2])
		if err := errors.Join(err1, err2); err != nil {
			return protocolErrorf("published: %v", err)
		}
		*r = report{kind: repPublished, index: index, sent: sent, returned: returned}
	case "delivered":
		words, err := splitWords(rest, "delivered")
		if err != nil {
			return err
		}
		if len(words) == 0 || len(words)%2 != 0 || len(words) > 2*maxDeliveriesPerLine {
			return protocolErrorf("delivered: want 1 to %d index and time pairs, got %d words", maxDeliveriesPerLine, len(words))
		}
		for i := 0; i < len(words); i += 2 {
			index, err := parseIndex(words[i])
			if err != nil {
				return protocolErrorf("delivered: %v", err)
			}
			at, err := parseTime(words[i+1])
			if err != nil {
				return protocolErrorf("delivered: %v", err)
			}
			deliveries = append(deliveries, delivery{index: index, at: at})
		}
		r.kind, r.deliveries = repDelivered, deliveries
	case "counters":
		dec := json.NewDecoder(bytes.NewReader(rest))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r.counters); err != nil {
			return protocolErrorf("counters: %v", err)
		}
		if len(bytes.TrimSpace(rest[dec.InputOffset():])) > 0 {
			return protocolErrorf("counters: text after the counters")
		}
		r.kind = repCounters
	default:
		return protocolErrorf("unknown report %q", truncate(line))
	}
	return nil
}

// splitWords splits a line's arguments at single spaces, refusing empty
// words: two spaces in a row, or a space at either end.
func splitWords(rest []byte, verb string) ([][]byte, error) {
	if len(rest) == 0 {
		return nil, nil
	}
	words := bytes.Split(rest, []byte{' '})
	for _, w := range words {
		if len(w) == 0 {
			return nil, protocolErrorf("%s: empty word (stray space)", verb)
		}
	}
	return words, nil
}

// parseIndex parses a message index: a decimal number from 0 to
// MaxMessages-1. The caller checks it against the run's messages.
func parseIndex(w []byte) (int, error) {
	n, err := strconv.ParseUint(string(w), 10, 32)
	if err != nil || n >= MaxMessages {
		return 0, fmt.Errorf("bad message index %q", truncate(w))
	}
	return int(n), nil
}

// parseTime parses a time in nanoseconds since the Unix epoch; it must be
// positive.
func parseTime(w []byte) (int64, error) {
	n, err := strconv.ParseInt(string(w), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad time %q", truncate(w))
	}
	return n, nil
}

// parseLoopback parses host:port with a loopback IP: the benchmark sends
// nowhere else.
func parseLoopback(w []byte) (string, error) {
	ap, err := netip.ParseAddrPort(string(w))
	if err != nil || ap.Port() == 0 {
		return "", fmt.Errorf("bad address %q", truncate(w))
	}
	if !ap.Addr().IsLoopback() {
		return "", fmt.Errorf("address %s is not on the loopback interface", ap)
	}
	return ap.String(), nil
}

// truncate shortens what an error quotes.
func truncate(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
