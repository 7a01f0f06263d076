package simulations

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/simulations/chart"
)

// File names WriteFiles uses in its directory.
const (
	SummaryFile      = "summary.json"
	RoundsFile       = "rounds.csv"
	ChartFile        = "delivery.png"
	LatencyFile      = "latency.csv"
	LatencyChartFile = "latency.png"
)

// CSVHeader is the first line of WriteCSV's output.
var CSVHeader = []string{
	"round", "time_s", "delivered_fraction", "nodes_up", "messages_sent",
	"bytes_sent", "datagrams_sent", "duplicates", "theory_subrounds", "theory_classic", "theory_async",
}

// WriteFiles writes SummaryFile, RoundsFile, ChartFile, LatencyFile and
// LatencyChartFile into dir, which it creates if need be, and returns their
// paths.
func (r *Report) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("simulations: %w", err)
	}
	var paths []string
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{SummaryFile, r.WriteJSON},
		{RoundsFile, r.WriteCSV},
		{ChartFile, r.WriteChart},
		{LatencyFile, r.WriteLatencyCSV},
		{LatencyChartFile, r.WriteLatencyChart},
	} {
		path := filepath.Join(dir, f.name)
		if err := writeFile(path, f.write); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func writeFile(path string, write func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("simulations: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("simulations: %w", cerr)
		}
	}()
	w := bufio.NewWriter(f)
	if err := write(w); err != nil {
		return fmt.Errorf("simulations: writing %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("simulations: writing %s: %w", path, err)
	}
	return nil
}

// WriteCSV writes one line per round under CSVHeader. It holds nothing that
// depends on the machine, so the same Config gives the same bytes.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	for _, row := range r.Rounds {
		err := cw.Write([]string{
			strconv.Itoa(row.Round),
			strconv.FormatFloat(row.Time.Seconds(), 'f', 3, 64),
			f(row.Delivered),
			strconv.Itoa(row.NodesUp),
			u(row.MessagesSent),
			u(row.BytesSent),
			u(row.Datagrams),
			u(row.Duplicates),
			f(row.TheorySubRounds),
			f(row.TheoryClassic),
			f(row.TheoryAsync),
		})
		if err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Summary is the JSON form of a Report, as WriteJSON writes it.
type Summary struct {
	Nodes        int     `json:"nodes"`
	Fanout       int     `json:"fanout"`
	Interval     string  `json:"interval"`
	CacheRounds  int     `json:"cache_rounds"`
	Loss         float64 `json:"loss"`
	Latency      string  `json:"latency"`
	Peers        string  `json:"peers"`
	Partition    string  `json:"partition"`
	Churn        string  `json:"churn"`
	Skew         string  `json:"skew"`
	Messages     int     `json:"messages"`
	PayloadBytes int     `json:"payload_bytes"`
	Seed         uint64  `json:"seed"`
	// WarmupSeconds is how long the nodes ran before the publication;
	// rounds count from the publication.
	WarmupSeconds float64 `json:"warmup_s"`

	Ended        string `json:"ended"`
	RoundsRun    int    `json:"rounds_run"`
	RoundsToFull int    `json:"rounds_to_full"`
	// The delivery latency (Report.DeliveryLatency) in milliseconds: its
	// percentiles over the deliveries made, the (message, node) pairs it
	// counts and how many of them were delivered, the time to full
	// delivery (-1 if never), overall and per message in the order of
	// Publishers.
	LatencyMs             LatencyPercentiles `json:"latency_ms"`
	LatencyPairs          int                `json:"latency_pairs"`
	LatencyDelivered      int                `json:"latency_delivered"`
	FullDeliveryMs        int64              `json:"full_delivery_ms"`
	MessageFullDeliveryMs []int64            `json:"message_full_delivery_ms"`
	TheoryRounds          struct {
		SubRounds int `json:"subrounds"`
		Classic   int `json:"classic"`
		Async     int `json:"async"`
	} `json:"theory_rounds_to_full"`
	PullBound         float64 `json:"log4_n_plus_log4_ln_n"`
	DeliveredFraction float64 `json:"delivered_fraction"`
	NodesUp           int     `json:"nodes_up"`
	MissingNodes      int     `json:"missing_nodes"`
	Redelivered       uint64  `json:"redelivered"`
	DuplicatesPerNode float64 `json:"duplicates_per_node"`
	BytesPerNode      float64 `json:"bytes_per_node"`
	DatagramsPerNode  float64 `json:"datagrams_per_node"`

	Totals  SummaryTotals     `json:"totals"`
	Dropped map[string]uint64 `json:"dropped"`
	Network struct {
		Sent          uint64 `json:"sent"`
		Delivered     uint64 `json:"delivered"`
		Lost          uint64 `json:"lost"`
		Partitioned   uint64 `json:"partitioned"`
		Undeliverable uint64 `json:"undeliverable"`
	} `json:"network"`
	Publishers []int `json:"publishers"`

	VirtualSeconds float64       `json:"virtual_time_s"`
	WallSeconds    float64       `json:"wall_time_s"`
	Memory         *MemoryReport `json:"memory,omitempty"`
	// DHT is set with the DHT peer model.
	DHT *DHTSummary `json:"dht,omitempty"`
}

// SummaryTotals are the cores' counters of a Report (gossip.Stats), summed
// over the nodes from the publication on, in the JSON form WriteJSON
// writes; the drops by reason are Summary.Dropped.
type SummaryTotals struct {
	Rounds            uint64 `json:"rounds"`
	PullsSent         uint64 `json:"pulls_sent"`
	PullBytes         uint64 `json:"pull_bytes"`
	PullsReceived     uint64 `json:"pulls_received"`
	AnswerDatagrams   uint64 `json:"answer_datagrams_sent"`
	MessagesSent      uint64 `json:"messages_sent"`
	MessagesReceived  uint64 `json:"messages_received"`
	DatagramsSent     uint64 `json:"datagrams_sent"`
	BytesSent         uint64 `json:"bytes_sent"`
	DatagramsReceived uint64 `json:"datagrams_received"`
	BytesReceived     uint64 `json:"bytes_received"`
	Published         uint64 `json:"published"`
	Delivered         uint64 `json:"delivered"`
	Chunks            uint64 `json:"chunks"`
	Reassembled       uint64 `json:"reassembled"`
	Duplicates        uint64 `json:"duplicates"`
	Backpressure      uint64 `json:"backpressure"`
	FilterErrors      uint64 `json:"filter_errors"`
	LogErrors         uint64 `json:"log_errors"`
	LogEvicted        uint64 `json:"log_evicted"`
	Uncached          uint64 `json:"uncached"`
	AESessions        uint64 `json:"ae_sessions"`
	AEFailures        uint64 `json:"ae_failures"`
	AEMissing         uint64 `json:"ae_missing"`
	AEPushed          uint64 `json:"ae_pushed"`
	AEBytesSent       uint64 `json:"ae_bytes_sent"`
	AEBytesReceived   uint64 `json:"ae_bytes_received"`
	AERepairsDropped  uint64 `json:"ae_repairs_dropped"`
	MoresSent         uint64 `json:"mores_sent"`
	Repulls           uint64 `json:"repulls"`
	RoundPullsSkipped uint64 `json:"round_pulls_skipped"`
	MoresIgnored      uint64 `json:"mores_ignored"`
	Parked            uint64 `json:"parked"`
	ParkRefused       uint64 `json:"park_refused"`
	ParkExpired       uint64 `json:"park_expired"`
	ParkedSends       uint64 `json:"parked_sends"`
	ParkCut           uint64 `json:"park_cut"`
	HintsOut          uint64 `json:"hints_sent"`
	HintsIn           uint64 `json:"hints_received"`
	HintsIgnored      uint64 `json:"hints_ignored"`
	Grafts            uint64 `json:"grafts"`
	Reciprocated      uint64 `json:"reciprocated"`
	Prunes            uint64 `json:"prunes"`
}

func summaryTotals(t *gossip.Stats) SummaryTotals {
	return SummaryTotals{
		Rounds:            t.Rounds,
		PullsSent:         t.PullsSent,
		PullBytes:         t.PullBytesOut,
		PullsReceived:     t.PullsIn,
		AnswerDatagrams:   t.AnswerDatagramsOut,
		MessagesSent:      t.MessagesOut,
		MessagesReceived:  t.MessagesIn,
		DatagramsSent:     t.DatagramsOut,
		BytesSent:         t.BytesOut,
		DatagramsReceived: t.DatagramsIn,
		BytesReceived:     t.BytesIn,
		Published:         t.Published,
		Delivered:         t.Delivered,
		Chunks:            t.Chunks,
		Reassembled:       t.Reassembled,
		Duplicates:        t.Duplicates,
		Backpressure:      t.Backpressure,
		FilterErrors:      t.FilterErrors,
		LogErrors:         t.LogErrors,
		LogEvicted:        t.LogEvicted,
		Uncached:          t.Uncached,
		AESessions:        t.AESessions,
		AEFailures:        t.AEFailures,
		AEMissing:         t.AEMissing,
		AEPushed:          t.AEPushed,
		AEBytesSent:       t.AEBytesOut,
		AEBytesReceived:   t.AEBytesIn,
		AERepairsDropped:  t.AERepairsDropped,
		MoresSent:         t.MoresOut,
		Repulls:           t.Repulls,
		RoundPullsSkipped: t.RoundPullsSkipped,
		MoresIgnored:      t.MoresIgnored,
		Parked:            t.Parked,
		ParkRefused:       t.ParkRefused,
		ParkExpired:       t.ParkExpired,
		ParkedSends:       t.ParkedSends,
		ParkCut:           t.ParkCut,
		HintsOut:          t.HintsOut,
		HintsIn:           t.HintsIn,
		HintsIgnored:      t.HintsIgnored,
		Grafts:            t.Grafts,
		Reciprocated:      t.Reciprocated,
		Prunes:            t.Prunes,
	}
}

// DHTSummary is the JSON form of a DHTReport. Per-node figures divide by
// the number of nodes.
type DHTSummary struct {
	// At the publication.
	Tables    int     `json:"tables"`
	Joined    int     `json:"joined"`
	PeersMean float64 `json:"answering_contacts_mean"`
	PeersMin  int     `json:"answering_contacts_min"`
	TableMean float64 `json:"table_contacts_mean"`
	PoolMean  float64 `json:"pool_contacts_mean"`
	// Traffic of the tables.
	WarmupDatagramsPerNode float64 `json:"warmup_datagrams_per_node"`
	WarmupBytesPerNode     float64 `json:"warmup_bytes_per_node"`
	RunDatagramsPerNode    float64 `json:"run_datagrams_per_node"`
	RunBytesPerNode        float64 `json:"run_bytes_per_node"`
}

// Summary returns the report's JSON form.
func (r *Report) Summary() Summary {
	c := r.Config
	s := Summary{
		Nodes:         c.Nodes,
		Fanout:        c.Gossip.Fanout,
		Interval:      c.Gossip.Interval.String(),
		CacheRounds:   c.Gossip.CacheRounds,
		Loss:          c.Loss,
		Latency:       fmt.Sprint(c.Latency),
		Peers:         fmt.Sprint(c.Peers),
		Partition:     c.Partition.String(),
		Churn:         c.Churn.String(),
		Skew:          "none",
		Messages:      c.Messages,
		PayloadBytes:  c.PayloadSize,
		Seed:          c.Seed,
		WarmupSeconds: c.Warmup.Seconds(),

		Ended:             r.Ended,
		RoundsRun:         len(r.Rounds) - 1,
		RoundsToFull:      r.RoundsToFull,
		LatencyMs:         r.DeliveryLatency.percentiles(),
		LatencyPairs:      r.DeliveryLatency.Pairs,
		LatencyDelivered:  r.DeliveryLatency.Delivered,
		FullDeliveryMs:    durationMs(r.DeliveryLatency.Full),
		PullBound:         PullBound(c.Nodes),
		DeliveredFraction: r.Delivered,
		NodesUp:           r.NodesUp,
		MissingNodes:      r.Missing,
		Redelivered:       r.Redelivered,
		DuplicatesPerNode: r.DuplicatesPerNode(),
		BytesPerNode:      r.BytesPerNode(),
		DatagramsPerNode:  float64(r.Totals.DatagramsOut) / float64(c.Nodes),
		Dropped:           r.Dropped(),
		Publishers:        r.Publishers,
		VirtualSeconds:    r.Virtual.Seconds(),
		WallSeconds:       r.Wall.Round(time.Millisecond).Seconds(),
		Memory:            r.Memory,
	}
	s.MessageFullDeliveryMs = make([]int64, len(r.DeliveryLatency.PerMessage))
	for m, d := range r.DeliveryLatency.PerMessage {
		s.MessageFullDeliveryMs[m] = durationMs(d)
	}
	s.TheoryRounds.SubRounds = roundsToFull(c.Nodes, TheorySubRounds(c.Nodes, c.Gossip.Fanout, c.Loss, 1000))
	s.TheoryRounds.Classic = roundsToFull(c.Nodes, TheoryClassicPull(c.Nodes, c.Gossip.Fanout, c.Loss, 1000))
	s.TheoryRounds.Async = roundsToFull(c.Nodes, TheoryAsyncPull(c.Nodes, c.Gossip.Fanout, c.Loss, 1000))
	if c.Peers == nil {
		s.Peers = FullMembership{}.String()
	}
	if c.Skew != nil {
		s.Skew = fmt.Sprint(c.Skew)
	}
	s.Totals = summaryTotals(&r.Totals)
	n := &s.Network
	n.Sent, n.Delivered, n.Lost = r.Network.Sent, r.Network.Delivered, r.Network.Lost
	n.Partitioned, n.Undeliverable = r.Network.Partitioned, r.Network.Undeliverable
	if d := r.DHT; d != nil {
		nodes := float64(max(c.Nodes, 1))
		p := &d.Published
		s.DHT = &DHTSummary{
			Tables: p.Tables, Joined: p.Joined, PeersMean: p.PeersMean, PeersMin: p.PeersMin,
			TableMean: p.TableMean, PoolMean: p.PoolMean,
			WarmupDatagramsPerNode: float64(p.Datagrams) / nodes,
			WarmupBytesPerNode:     float64(p.Bytes) / nodes,
			RunDatagramsPerNode:    float64(d.Datagrams) / nodes,
			RunBytesPerNode:        float64(d.Bytes) / nodes,
		}
	}
	return s
}

// WriteJSON writes the report's Summary as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.Summary())
}

// roundsToFull is the first round of a theoretical curve f at which fewer
// than half a node of n lack the message; -1 if none.
func roundsToFull(n int, f []float64) int {
	for r, x := range f {
		if float64(n)*(1-x) < 0.5 {
			return r
		}
	}
	return -1
}

// The charts' size in pixels, and a point's length in pixels on them.
const (
	chartWidth, chartHeight = 864, 528
	pt                      = 4.0 / 3
)

// simulatedColor draws what the simulator measured, on both charts.
var simulatedColor = color.RGBA{R: 20, G: 80, B: 200, A: 255}

// WriteChart draws, as a PNG, the fraction delivered per round against the
// three theoretical curves of Round.
func (r *Report) WriteChart(w io.Writer) error {
	if len(r.Rounds) == 0 {
		return errors.New("no rounds to draw")
	}
	c := r.Config
	title := fmt.Sprintf("hearsay pull gossip: %d nodes, fanout %d, interval %v, loss %s, peers %v",
		c.Nodes, c.Gossip.Fanout, c.Gossip.Interval, formatPercent(c.Loss), c.Peers)
	if c.Partition != nil || c.Churn != nil || c.Skew != nil {
		title += fmt.Sprintf("\npartition %v, churn %v", c.Partition, c.Churn)
		if c.Skew != nil {
			title += fmt.Sprintf(", skew %v", c.Skew)
		}
	}

	// The theoretical curves go on until they reach every node, even when
	// the simulation got there first.
	n, fanout := r.Rounds[0].NodesUp, c.Gossip.Fanout
	last := len(r.Rounds) - 1
	for _, f := range [][]float64{
		TheorySubRounds(n, fanout, c.Loss, 1000),
		TheoryClassicPull(n, fanout, c.Loss, 1000),
		TheoryAsyncPull(n, fanout, c.Loss, 1000),
	} {
		last = max(last, roundsToFull(n, f))
	}
	curve := func(f []float64) []chart.Point {
		pts := make([]chart.Point, last+1)
		for i := range pts {
			pts[i] = chart.Point{X: float64(i), Y: f[min(i, len(f)-1)]}
		}
		return pts
	}
	sim := make([]chart.Point, len(r.Rounds))
	for i, row := range r.Rounds {
		sim[i] = chart.Point{X: float64(row.Round), Y: row.Delivered}
	}
	lossNote := ""
	if c.Loss > 0 {
		lossNote = fmt.Sprintf(", with %s loss", formatPercent(c.Loss))
	}
	// theory is a theory curve: 1.5 points wide, dashed with the given
	// lengths in points.
	theory := func(label string, f []float64, col color.RGBA, dashes ...float64) chart.Series {
		for i := range dashes {
			dashes[i] *= pt
		}
		return chart.Series{Label: label, Points: curve(f), Color: col, Width: 1.5 * pt, Dashes: dashes}
	}
	ch := chart.Chart{
		Title: title, Width: chartWidth, Height: chartHeight,
		X: chart.Axis{Label: fmt.Sprintf("round (%v each)", c.Gossip.Interval), Min: 0, Max: float64(last),
			Ticks: integerTicks(0, float64(last))},
		Y: chart.Axis{Label: "fraction of nodes up holding the messages", Min: 0, Max: 1.02},
		// Drawn in this order, the simulated line on top; the legend
		// lists them the other way round.
		Series: []chart.Series{
			theory(fmt.Sprintf("classic pull: %d pulls at once (q → q^%d per round%s)", fanout, fanout+1, lossNote),
				TheoryClassicPull(n, fanout, c.Loss, last), color.RGBA{R: 150, G: 150, B: 150, A: 255}, 2, 3),
			theory(fmt.Sprintf("theory: %d pulls per round, each at its own phase%s", fanout, lossNote),
				TheoryAsyncPull(n, fanout, c.Loss, last), color.RGBA{R: 30, G: 150, B: 60, A: 255}, 1, 2, 6, 2),
			theory(fmt.Sprintf("theory: %d sub-rounds of 1 pull (q → q² each%s)", fanout, lossNote),
				TheorySubRounds(n, fanout, c.Loss, last), color.RGBA{R: 220, G: 110, B: 20, A: 255}, 6, 3),
			{Label: "simulated", Points: sim, Color: simulatedColor, Width: 2 * pt, Marker: 2.5 * pt},
		},
	}
	return ch.WritePNG(w)
}

// integerTicks marks whole rounds, about ten of them.
func integerTicks(min, max float64) []chart.Tick {
	step := 1
	for k := 0; (max-min)/float64(step) > 12; k++ {
		step = []int{2, 5, 10}[k%3] * pow10(k/3) // 1, 2, 5, 10, 20, 50, ...
	}
	var ticks []chart.Tick
	for x := int(min); float64(x) <= max; x++ {
		if x%step == 0 {
			ticks = append(ticks, chart.Tick{Value: float64(x), Label: strconv.Itoa(x)})
		}
	}
	return ticks
}

func pow10(k int) int {
	p := 1
	for ; k > 0; k-- {
		p *= 10
	}
	return p
}
