package simulations

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The spec syntaxes below are those of "hearsay simulate"; docs/simulations.md
// documents them. Their errors name what is wrong without naming the flag,
// which the caller adds.

// ParseLatency reads a latency model:
//
//	1ms                  fixed: every datagram takes 1ms
//	uniform:1ms-20ms     uniform between 1ms and 20ms
//	normal:20ms,5ms      normal, mean 20ms, standard deviation 5ms, cut at 0
//	lognormal:20ms,0.5   log-normal, median 20ms, σ of the logarithm 0.5
func ParseLatency(spec string) (Latency, error) {
	spec = strings.TrimSpace(spec)
	kind, args, hasKind := strings.Cut(spec, ":")
	if !hasKind {
		d, err := parseDuration(spec)
		if err != nil {
			return nil, err
		}
		return FixedLatency(d), nil
	}
	switch strings.ToLower(kind) {
	case "fixed":
		d, err := parseDuration(args)
		if err != nil {
			return nil, err
		}
		return FixedLatency(d), nil
	case "uniform":
		lo, hi, ok := strings.Cut(args, "-")
		if !ok {
			return nil, fmt.Errorf("want uniform:MIN-MAX such as uniform:1ms-20ms, got %q", spec)
		}
		min, err := parseDuration(lo)
		if err != nil {
			return nil, err
		}
		max, err := parseDuration(hi)
		if err != nil {
			return nil, err
		}
		if max < min {
			return nil, fmt.Errorf("uniform latency maximum %v is below its minimum %v", max, min)
		}
		return UniformLatency{Min: min, Max: max}, nil
	case "normal":
		a, b, ok := strings.Cut(args, ",")
		if !ok {
			return nil, fmt.Errorf("want normal:MEAN,STDDEV such as normal:20ms,5ms, got %q", spec)
		}
		mean, err := parseDuration(a)
		if err != nil {
			return nil, err
		}
		sd, err := parseDuration(b)
		if err != nil {
			return nil, err
		}
		return NormalLatency{Mean: mean, StdDev: sd}, nil
	case "lognormal":
		a, b, ok := strings.Cut(args, ",")
		if !ok {
			return nil, fmt.Errorf("want lognormal:MEDIAN,SIGMA such as lognormal:20ms,0.5, got %q", spec)
		}
		median, err := parseDuration(a)
		if err != nil {
			return nil, err
		}
		sigma, err := strconv.ParseFloat(strings.TrimSpace(b), 64)
		if err != nil || math.IsNaN(sigma) || sigma < 0 || sigma > 10 {
			return nil, fmt.Errorf("want a σ from 0 to 10 after the median, got %q", b)
		}
		return LogNormalLatency{Median: median, Sigma: sigma}, nil
	}
	return nil, fmt.Errorf("unknown latency model %q (want a duration, uniform:MIN-MAX, normal:MEAN,STDDEV or lognormal:MEDIAN,SIGMA)", kind)
}

// ParsePartition reads a partition: comma-separated key=value pairs,
//
//	at=10s,heal=70s,split=0.5
//
// at (default 0s) and heal (default: never) count from the publication;
// split (default 0.5, or a percentage such as 30%) is the share of the
// nodes in the first group. An empty spec or "none" means no partition.
func ParsePartition(spec string) (*Partition, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.EqualFold(spec, "none") {
		return nil, nil
	}
	p := &Partition{}
	err := parsePairs(spec, "at, heal, split", func(key, val string) error {
		var err error
		switch key {
		case "at":
			p.At, err = parseDuration(val)
		case "heal":
			p.Heal, err = parseDuration(val)
		case "split":
			p.Split, err = ParseFraction(val)
			if err == nil && (p.Split <= 0 || p.Split >= 1) {
				err = fmt.Errorf("split must be above 0 and below 1, got %s", val)
			}
		default:
			return errUnknownKey
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if p.Heal != 0 && p.Heal <= p.At {
		return nil, fmt.Errorf("heal=%v is not after at=%v", p.Heal, p.At)
	}
	return p, nil
}

// String returns the partition in the syntax ParsePartition reads.
func (p *Partition) String() string {
	if p == nil {
		return "none"
	}
	s := fmt.Sprintf("at=%v", p.At)
	if p.Heal > 0 {
		s += fmt.Sprintf(",heal=%v", p.Heal)
	}
	return s + ",split=" + formatFloat(p.split())
}

// ParseChurn reads churn: comma-separated events,
//
//	crash=10%@5s,restart=stateless@20s,join=5%@3s
//
// crash=FRACTION@TIME crashes that share of the nodes up (publishers
// excepted) at TIME after the publication; restart=stateless@TIME or
// restart=stateful@TIME restarts them, without or with their seen filter;
// join=FRACTION@TIME keeps that share of the nodes out from the start until
// TIME. Fractions are 0.1 or 10%. An empty spec or "none" means no churn.
func ParseChurn(spec string) (*Churn, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.EqualFold(spec, "none") {
		return nil, nil
	}
	c := &Churn{}
	err := parsePairs(spec, "crash, restart, join", func(key, val string) error {
		what, at, ok := strings.Cut(val, "@")
		if !ok {
			return fmt.Errorf("want %s, got %q", churnSyntax(key), val)
		}
		t, err := parseDuration(at)
		if err != nil {
			return err
		}
		switch key {
		case "crash":
			c.CrashAt = t
			c.Crash, err = ParseFraction(what)
		case "join":
			c.JoinAt = t
			c.Join, err = ParseFraction(what)
		case "restart":
			c.RestartAt = t
			switch strings.ToLower(strings.TrimSpace(what)) {
			case "stateless":
				c.Restart = RestartStateless
			case "stateful":
				c.Restart = RestartStateful
			default:
				err = fmt.Errorf("restart must be stateless or stateful, got %q", what)
			}
		default:
			return errUnknownKey
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case c.Restart != NoRestart && c.Crash == 0:
		return nil, errors.New("restart needs a crash=FRACTION@TIME")
	case c.Restart != NoRestart && c.RestartAt <= c.CrashAt:
		return nil, fmt.Errorf("restart@%v is not after crash@%v", c.RestartAt, c.CrashAt)
	}
	return c, nil
}

// churnSyntax describes the value of a churn key, for errors.
func churnSyntax(key string) string {
	switch key {
	case "restart":
		return "stateless@TIME or stateful@TIME such as stateless@20s"
	case "crash", "join":
		return "FRACTION@TIME such as 10%@5s"
	}
	return "VALUE@TIME"
}

// String returns the churn in the syntax ParseChurn reads.
func (c *Churn) String() string {
	if c == nil {
		return "none"
	}
	var parts []string
	if c.Crash > 0 {
		parts = append(parts, fmt.Sprintf("crash=%s@%v", formatPercent(c.Crash), c.CrashAt))
	}
	if c.Restart != NoRestart {
		parts = append(parts, fmt.Sprintf("restart=%v@%v", c.Restart, c.RestartAt))
	}
	if c.Join > 0 {
		parts = append(parts, fmt.Sprintf("join=%s@%v", formatPercent(c.Join), c.JoinAt))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// ParsePeers reads a peer model for a simulation of nodes nodes:
//
//	full        every node may pull from every other (default)
//	graph:8     a static random graph of degree 8, drawn from seed
//	dht         the DHT registry: a dht.Table per node (see DHT)
//	dht:bootstrap=3,warmup=20s,spread=5s,pool=32,ping=1m,k=16
//
// The options of dht, each optional: bootstrap, the number of bootstrap
// nodes (default 1); warmup, how long the tables fill before the
// publication (default 10s); spread, the span over which the nodes join
// (default 0s: all at once); pool, the sample pool's
// size (default 128; off: sample the k-buckets); ping, the ping interval
// (default 30s); k, the bucket size (default 16).
func ParsePeers(spec string, nodes int, seed uint64) (PeerModel, error) {
	spec = strings.ToLower(strings.TrimSpace(spec))
	switch {
	case spec == "" || spec == "full":
		return FullMembership{}, nil
	case spec == "dht":
		return parseDHT("", nodes)
	case strings.HasPrefix(spec, "dht:"):
		opts := strings.TrimPrefix(spec, "dht:")
		if strings.TrimSpace(opts) == "" {
			return nil, fmt.Errorf("want dht or dht:KEY=VALUE,... such as dht:bootstrap=3, got %q", spec)
		}
		return parseDHT(opts, nodes)
	case strings.HasPrefix(spec, "graph:"):
		d, err := strconv.Atoi(strings.TrimPrefix(spec, "graph:"))
		if err != nil || d < 1 {
			return nil, fmt.Errorf("want graph:DEGREE with a whole DEGREE of at least 1, got %q", spec)
		}
		g, err := NewRandomGraph(nodes, d, seed)
		if err != nil {
			return nil, errors.New(strings.TrimPrefix(err.Error(), "simulations: "))
		}
		return g, nil
	}
	return nil, fmt.Errorf("unknown peer model %q (want full, graph:DEGREE, dht or dht:KEY=VALUE,...)", spec)
}

// ParseFraction reads a fraction from 0 to 1, written 0.25 or 25%.
func ParseFraction(s string) (float64, error) {
	s = strings.TrimSpace(s)
	scale := 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = strings.TrimSpace(t), 100
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("want a fraction such as 0.2 or 20%%, got %q", s)
	}
	f /= scale
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("want a fraction from 0 to 1 (0%% to 100%%), got %s", formatFloat(f))
	}
	return f, nil
}

var errUnknownKey = errors.New("unknown key")

// parsePairs calls set for each key=value of a comma-separated list, each
// key at most once; keys names the known keys for errors.
func parsePairs(spec, keys string, set func(key, val string) error) error {
	seen := map[string]bool{}
	for _, pair := range strings.Split(spec, ",") {
		pair = strings.TrimSpace(pair)
		key, val, ok := strings.Cut(pair, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !ok || key == "" {
			return fmt.Errorf("want KEY=VALUE, got %q (keys: %s)", pair, keys)
		}
		if seen[key] {
			return fmt.Errorf("%s given twice", key)
		}
		seen[key] = true
		if err := set(key, strings.TrimSpace(val)); errors.Is(err, errUnknownKey) {
			return fmt.Errorf("unknown key %q (want %s)", key, keys)
		} else if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// parseDuration reads a non-negative duration.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 500ms or 10s, got %q", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %s", s)
	}
	return d, nil
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func formatPercent(f float64) string { return formatFloat(f*100) + "%" }

// parseDHT reads the options of the dht peer model: comma-separated
// key=value pairs, each optional.
func parseDHT(opts string, nodes int) (PeerModel, error) {
	var m DHT
	if strings.TrimSpace(opts) != "" {
		err := parsePairs(opts, "bootstrap, warmup, spread, pool, ping, k", func(key, val string) error {
			var err error
			switch key {
			case "bootstrap":
				m.Bootstrap, err = parseWhole(val, 1, maxBootstrap)
			case "warmup":
				m.Warmup, err = parseDuration(val)
				if err == nil && m.Warmup == 0 {
					err = errors.New("warm-up must be above 0")
				}
			case "spread":
				m.Spread, err = parseDuration(val)
			case "pool":
				if strings.EqualFold(val, "off") {
					m.Table.SamplePoolSize = -1
				} else {
					m.Table.SamplePoolSize, err = parseWhole(val, 1, 10_000)
				}
			case "ping":
				m.Table.PingInterval, err = parseDuration(val)
				if err == nil && m.Table.PingInterval < time.Second {
					err = fmt.Errorf("want at least 1s (the request timeout), got %s", val)
				}
			case "k":
				m.Table.K, err = parseWhole(val, 1, 32)
			default:
				return errUnknownKey
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	m = m.withDefaults()
	if m.Bootstrap > nodes {
		return nil, fmt.Errorf("bootstrap=%d is more than the %d nodes", m.Bootstrap, nodes)
	}
	return m, nil
}

// parseWhole reads a whole number from lo to hi.
func parseWhole(s string, lo, hi int) (int, error) {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("want a whole number from %d to %d, got %q", lo, hi, s)
	}
	return v, nil
}
