package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// GossipSub runs in a program of its own, built from the nested module
// bench/gossipsub so that hearsay does not carry libp2p: GossipSubProgram,
// built with GossipSubBuild from the repository's root.
const (
	GossipSubProgram = "hearsay-bench-gossipsub"
	GossipSubBuild   = "cd bench/gossipsub && go build -o ../../dist/" + GossipSubProgram + " ."
)

// gossipSubSlack is how long the program may run past Config.Timeout: it
// takes up to 30 s to connect its hosts and form the mesh, and stops them
// afterwards. Past it, the program is interrupted, and killed
// shutdownGrace later.
const gossipSubSlack = time.Minute

// maxGossipSubOutput bounds what is read of the program's standard output:
// its report is a few hundred bytes.
const maxGossipSubOutput = 1 << 20

// ErrNoGossipSub is wrapped by FindGossipSub's error when the program is
// nowhere to be found.
var ErrNoGossipSub = errors.New("bench: the gossipsub program is not built")

// FindGossipSub returns the path of the gossipsub program: explicit if it
// is not empty (it must exist), else the first GossipSubProgram found in
// dist/ under the working directory, beside this executable or in dist/
// beside it, or on PATH.
func FindGossipSub(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("bench: the gossipsub program: %w", err)
		}
		return explicit, nil
	}
	candidates := []string{filepath.Join("dist", GossipSubProgram)}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		candidates = append(candidates, filepath.Join(dir, GossipSubProgram), filepath.Join(dir, "dist", GossipSubProgram))
	}
	for _, c := range candidates {
		if info, err := os.Stat(c); err == nil && !info.IsDir() {
			return c, nil
		}
	}
	if p, err := exec.LookPath(GossipSubProgram); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: no %s in dist/, beside this program or on PATH; build it with `%s`",
		ErrNoGossipSub, GossipSubProgram, GossipSubBuild)
}

// runGossipSub runs the workload of cfg with Config.GossipSubCommand and
// reads its report. Its progress lines go to Config.Progress.
func runGossipSub(ctx context.Context, cfg Config) (Result, error) {
	rate := cfg.Rate
	if rate < 0 {
		rate = 0 // as fast as possible, in both programs' flags
	}
	args := append(cfg.GossipSubCommand[1:len(cfg.GossipSubCommand):len(cfg.GossipSubCommand)],
		"--nodes", strconv.Itoa(cfg.Nodes), "--messages", strconv.Itoa(cfg.Messages),
		"--size", strconv.Itoa(cfg.Size), "--rate", strconv.Itoa(rate),
		"--origins", strconv.Itoa(cfg.Origins), "--timeout", cfg.Timeout.String(), "--json")
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout+gossipSubSlack)
	defer cancel()
	cmd := exec.CommandContext(ctx, cfg.GossipSubCommand[0], args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // it stops its hosts in order
	cmd.WaitDelay = shutdownGrace
	setNodeProcAttr(cmd)
	var stdout limitedBuffer
	stderr := &tailWriter{}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	if cfg.Progress != nil {
		cmd.Stderr = io.MultiWriter(stderr, cfg.Progress)
	}
	if err := cmd.Run(); err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return Result{}, fmt.Errorf("bench: gossipsub: %s did not finish within %s: %w%s",
				cfg.GossipSubCommand[0], cfg.Timeout+gossipSubSlack, err, stderr.suffix())
		case ctx.Err() != nil:
			return Result{}, ctx.Err()
		}
		return Result{}, fmt.Errorf("bench: gossipsub: %s: %w%s", cfg.GossipSubCommand[0], err, stderr.suffix())
	}
	res, err := parseGossipSubReport(stdout.Bytes(), cfg)
	if err != nil {
		return Result{}, fmt.Errorf("bench: gossipsub: %s: %w", cfg.GossipSubCommand[0], err)
	}
	return res, nil
}

// gossipSubReport is what is read of the program's JSON: WriteJSON's
// fields, and the publishing time it adds.
type gossipSubReport struct {
	Config struct {
		Nodes    int `json:"nodes"`
		Messages int `json:"messages"`
		Size     int `json:"size"`
	} `json:"config"`
	Results []struct {
		jsonResult
		PublishTimeMS       float64 `json:"publish_time_ms"`
		BytesOutWithHeaders *uint64 `json:"bytes_out_with_headers"`
	} `json:"results"`
}

// parseGossipSubReport turns the program's report into a Result, checking
// that it ran cfg's workload.
func parseGossipSubReport(out []byte, cfg Config) (Result, error) {
	var rep gossipSubReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return Result{}, fmt.Errorf("reading its report: %w", err)
	}
	if len(rep.Results) != 1 || rep.Results[0].System != GossipSub {
		return Result{}, fmt.Errorf("its report has no single %s result", GossipSub)
	}
	if c := rep.Config; c.Nodes != cfg.Nodes || c.Messages != cfg.Messages || c.Size != cfg.Size {
		return Result{}, fmt.Errorf("it ran %d nodes, %d messages of %d bytes instead of %d, %d of %d",
			c.Nodes, c.Messages, c.Size, cfg.Nodes, cfg.Messages, cfg.Size)
	}
	r := rep.Results[0]
	res := Result{
		System: GossipSub, Nodes: cfg.Nodes, Messages: cfg.Messages, Size: cfg.Size,
		Published: r.Published, PublishTime: fromMS(r.PublishTimeMS),
		BackpressureWaits: r.BackpressureWaits, Deliveries: r.Deliveries,
		LatencySamples: r.LatencySamples, BytesOut: r.BytesOut, Duplicates: r.Duplicates,
		Drops: r.Drops, Window: fromMS(r.WindowMS),
	}
	if r.Published < 0 || r.Published > cfg.Messages || r.Deliveries < 0 || r.Deliveries > res.Expected() ||
		r.LatencySamples < 0 || int64(r.LatencySamples) > res.Expected() {
		return Result{}, fmt.Errorf("its report counts more than the workload holds: %d published, %d deliveries, %d latency samples",
			r.Published, r.Deliveries, r.LatencySamples)
	}
	if r.BytesOutWithHeaders != nil {
		if *r.BytesOutWithHeaders < r.BytesOut {
			return Result{}, fmt.Errorf("its report counts fewer bytes with headers (%d) than without (%d)", *r.BytesOutWithHeaders, r.BytesOut)
		}
		res.HeaderBytes, res.HeadersKnown = *r.BytesOutWithHeaders-r.BytesOut, true
	}
	if r.TimeToFullMS != nil {
		res.TimeToFull = fromMS(*r.TimeToFullMS)
	}
	if r.LatencySamples > 0 {
		if r.LatencyP50MS == nil || r.LatencyP99MS == nil || r.LatencyMaxMS == nil {
			return Result{}, errors.New("its report has latency samples but no latencies")
		}
		res.LatencyP50, res.LatencyP99, res.LatencyMax = fromMS(*r.LatencyP50MS), fromMS(*r.LatencyP99MS), fromMS(*r.LatencyMaxMS)
	}
	if r.CPUMS != nil {
		res.CPU, res.CPUKnown = fromMS(*r.CPUMS), true
	}
	return res, nil
}

// fromMS turns a report's milliseconds into a duration.
func fromMS(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// limitedBuffer keeps the first maxGossipSubOutput bytes written to it and
// drops the rest.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxGossipSubOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
