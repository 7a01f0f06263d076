// Package handler runs a command for each message a node delivers whose
// topic matches a pattern, as serf runs a script per event: the payload on
// standard input, the message's ID, topic, origin and creation time in
// HEARSAY_MESSAGE_* variables.
//
// Delivery is at least once. A run that fails (a non-zero exit, or a
// timeout) is retried with backoff until it succeeds; later messages go
// on meanwhile, up to Config.MaxPending. Each handler's progress (the
// last message handled in the node's order, and those handled after it)
// is kept in a small file written atomically, and a restart resumes from
// the node's message log after it: nothing handled runs again, nothing
// unhandled is skipped, as long as the log still holds it (its retention,
// 10 minutes by default). Only a crash between a run's end and the write
// of its progress runs a message again.
package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/node"
)

// Source is where handlers take messages from: a *node.Node.
type Source interface {
	Name() string
	ID() gossip.NodeID
	Subscribe(pattern string) (*node.Subscription, error)
	SubscribeAfter(pattern string, after gossip.MessageID) (*node.Subscription, *node.Replay, error)
	SubscribeLogged(pattern string) (*node.Subscription, *node.Replay, error)
}

// Handlers are the running handlers of a node.
type Handlers struct {
	cfg  Config
	src  Source
	sem  chan struct{} // Config.Concurrency slots
	list []*handler

	stop     context.CancelFunc // ends feeding, waiting and retrying
	stopping context.Context
	kill     context.CancelFunc // ends the runs
	killing  context.Context
	runs     sync.WaitGroup // the handle goroutines
	feeders  sync.WaitGroup // the feed and save goroutines
	closed   sync.Once
	closeErr error
}

// handler is one spec at work.
type handler struct {
	hs     *Handlers
	spec   Spec
	p      *progress
	sub    *node.Subscription
	replay *node.Replay // nil: none to read first
	log    *slog.Logger
}

// Start subscribes every handler of cfg to src and starts running them. A
// handler seen before (its progress in cfg.Dir) resumes after the last
// message it handled; a new one starts with the messages src delivers
// from now on. Call it before the node starts, so that a new handler sees
// the node's first messages too.
func Start(src Source, cfg Config) (*Handlers, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hs := &Handlers{cfg: cfg, src: src, sem: make(chan struct{}, cfg.Concurrency)}
	hs.stopping, hs.stop = context.WithCancel(context.Background())
	hs.killing, hs.kill = context.WithCancel(context.Background())
	for _, spec := range cfg.Handlers {
		h, err := hs.open(spec)
		if err != nil {
			for _, h := range hs.list {
				h.sub.Close()
			}
			return nil, err
		}
		hs.list = append(hs.list, h)
	}
	for _, h := range hs.list {
		hs.feeders.Add(2)
		go h.feed()
		go h.saveLoop()
	}
	return hs, nil
}

// open loads a handler's progress and subscribes it where it left off.
func (hs *Handlers) open(spec Spec) (*handler, error) {
	p, known, err := loadProgress(hs.cfg.Dir, spec)
	if err != nil {
		return nil, err
	}
	h := &handler{hs: hs, spec: spec, p: p, log: hs.cfg.Logger.With("handler", spec.String())}
	pattern := spec.Pattern.String()
	switch {
	case !known:
		// New: from now on. The log's last matching message is the resume
		// point; with none, the start of the log is.
		sub, replay, err := hs.src.SubscribeLogged(pattern)
		if err != nil {
			return nil, fmt.Errorf("handler %q: %w", spec.String(), err)
		}
		var last gossip.MessageID
		logged := false
		for batch := replay.Next(); batch != nil; batch = replay.Next() {
			last, logged = batch[len(batch)-1].ID, true
		}
		if err := replay.Err(); err != nil {
			sub.Close()
			return nil, fmt.Errorf("handler %q: reading the message log: %w", spec.String(), err)
		}
		p.setStart(last, logged)
		h.sub = sub
		h.log.Info("handler started: it runs for the messages delivered from now on")
	default:
		if err := h.resubscribe(); err != nil {
			return nil, err
		}
		after, hasAfter := p.resumePoint()
		if hasAfter {
			h.log.Info("handler resumed", "after", after.String(), "done_after_it", len(p.skip))
		} else {
			h.log.Info("handler resumed from the start of the message log", "done", len(p.skip))
		}
	}
	return h, nil
}

// resubscribe subscribes after the last message taken, replaying the log
// from there; from the start of the log if that message is no longer in
// it, so that nothing unhandled is skipped (but what the log holds from
// before it runs again).
func (h *handler) resubscribe() error {
	pattern := h.spec.Pattern.String()
	after, hasAfter := h.p.resumePoint()
	var sub *node.Subscription
	var replay *node.Replay
	var err error
	if hasAfter {
		sub, replay, err = h.hs.src.SubscribeAfter(pattern, after)
		if err == nil && !replay.Found() {
			sub.Close()
			h.log.Warn("the last message taken is no longer in the message log: replaying all the log holds; messages the log dropped meanwhile are lost",
				"after", after.String())
			hasAfter = false
		}
	}
	if err == nil && !hasAfter {
		sub, replay, err = h.hs.src.SubscribeLogged(pattern)
	}
	if err != nil {
		return fmt.Errorf("handler %q: %w", h.spec.String(), err)
	}
	h.sub, h.replay = sub, replay
	return nil
}

// feed takes the handler's messages in order: the replay, then the
// subscription; it subscribes again after a cut-off for slowness.
func (h *handler) feed() {
	defer h.hs.feeders.Done()
	defer func() { h.sub.Close() }() // the last one subscribed
	for {
		if h.replay != nil {
			for batch := h.replay.Next(); batch != nil; batch = h.replay.Next() {
				for _, m := range batch {
					if !h.take(m) {
						return
					}
				}
			}
			if err := h.replay.Err(); err != nil {
				h.log.Error("reading the message log", "err", err)
			}
			h.replay = nil
			h.p.forgetSkips()
		}
	live:
		for {
			select {
			case m, ok := <-h.sub.C:
				if !ok {
					break live
				}
				if !h.take(m) {
					return
				}
			case <-h.hs.stopping.Done():
				return
			}
		}
		err := h.sub.Err()
		if !errors.Is(err, node.ErrSlowSubscriber) || h.hs.stopping.Err() != nil {
			return // the node or the handlers closed
		}
		// The window was full for longer than the node buffers: the log
		// has the rest.
		if err := h.resubscribe(); err != nil {
			h.log.Error("handler stopped", "err", err)
			return
		}
	}
}

// take waits for room in the window, then starts handling m; false when
// the handlers stop.
func (h *handler) take(m gossip.Message) bool {
	if h.p.skipped(m) {
		return true
	}
	for {
		ok, changed := h.p.room(len(m.Payload), h.hs.cfg.MaxPending, h.hs.cfg.MaxPendingBytes)
		if ok {
			break
		}
		select {
		case <-changed:
		case <-h.hs.stopping.Done():
			return false
		}
	}
	// The first run's slot is taken here, so that first runs start in the
	// node's order (one after the other with a Concurrency of 1).
	select {
	case h.hs.sem <- struct{}{}:
	case <-h.hs.stopping.Done():
		return false
	}
	if h.hs.stopping.Err() != nil {
		<-h.hs.sem
		return false
	}
	e := h.p.take(m)
	h.hs.runs.Add(1)
	go h.handle(e)
	return true
}

// handle runs the command for e until a run succeeds or the handlers
// stop. It starts holding a slot for the first run.
func (h *handler) handle(e *pending) {
	defer h.hs.runs.Done()
	hs := h.hs
	wait := hs.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			select {
			case hs.sem <- struct{}{}:
			case <-hs.stopping.Done():
				return
			}
			if hs.stopping.Err() != nil {
				<-hs.sem
				return
			}
		}
		ctx, cancel := context.WithTimeout(hs.killing, hs.cfg.Timeout)
		err := hs.cfg.Runner.Run(ctx, Job{Command: h.spec.Command, Message: e.msg, Attempt: attempt,
			Node: hs.src.Name(), NodeID: hs.src.ID().String()})
		cancel()
		<-hs.sem
		if err == nil {
			h.p.complete(e)
			h.log.Debug("message handled", "id", e.msg.ID.String(), "topic", e.msg.Topic, "attempt", attempt)
			return
		}
		if hs.killing.Err() != nil {
			return // killed by Close: it runs again after a restart
		}
		h.log.Warn("handler failed, will retry", "id", e.msg.ID.String(), "topic", e.msg.Topic,
			"attempt", attempt, "retry_in", wait.String(), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-hs.stopping.Done():
			t.Stop()
			return
		}
		wait = min(2*wait, hs.cfg.RetryMax)
	}
}

// saveLoop writes the progress file whenever it changed, coalescing the
// changes made while it wrote, until the handlers close.
func (h *handler) saveLoop() {
	defer h.hs.feeders.Done()
	for {
		select {
		case <-h.p.dirty:
			if err := h.p.save(h.spec); err != nil {
				h.log.Error("saving progress", "err", err)
			}
		case <-h.hs.killing.Done():
			return
		}
	}
}

// Close stops taking messages, lets running commands finish for up to
// Config.StopTimeout, kills those still running, and writes every
// handler's progress. Call it before closing the node.
func (hs *Handlers) Close() error {
	hs.closed.Do(func() {
		hs.stop()
		done := make(chan struct{})
		go func() { hs.runs.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(hs.cfg.StopTimeout):
			hs.cfg.Logger.Warn("handlers still running at stop, killed; their messages run again after a restart",
				"after", hs.cfg.StopTimeout.String())
		}
		hs.kill()
		hs.runs.Wait()
		hs.feeders.Wait()
		for _, h := range hs.list {
			if err := h.p.save(h.spec); err != nil && hs.closeErr == nil {
				hs.closeErr = err
			}
		}
	})
	return hs.closeErr
}
