package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
)

// Application validation: with Config.Validator, the core hands every
// message it is about to accept to the node (gossip.Config.Validate), and
// the node asks the validator on a bounded set of goroutines, then gives the
// core the verdict. A validator that fails (unreachable, timed out) leaves
// the message waiting, held in the digest, and is asked again after a
// back-off: nothing is accepted unvalidated. A local publish is validated
// before it is published.

// Validator decides whether the node accepts a message. An error means no
// decision (the validator is unreachable, or timed out): the message waits
// and the validator is asked again.
type Validator func(ctx context.Context, m gossip.Message) (gossip.Verdict, error)

// Errors of Publish with a validator.
var (
	// ErrRejected: the local validator rejected the message (the API
	// answers 422).
	ErrRejected = errors.New("node: the validator rejected the message")
	// ErrIgnored: the local validator ignored the message, which was not
	// published (the API answers 409).
	ErrIgnored = errors.New("node: the validator ignored the message")
	// ErrValidatorUnavailable: the validator gave no verdict on a local
	// publish (the API answers 503: retry).
	ErrValidatorUnavailable = errors.New("node: the validator gave no verdict")
)

// Validation retries back off from validateRetryMin, doubling to
// validateRetryMax.
const (
	validateRetryMin = 100 * time.Millisecond
	validateRetryMax = 5 * time.Second
)

// validation is the node's side of validation: the queue the workers take
// messages from. A message is in it, or being validated, or waiting for a
// retry, from the Ready that handed it out to its verdict.
type validation struct {
	queue   chan validationJob
	results chan validationResult // calls done, for applyValidationsLocked
	retries map[int]func() bool   // the retries scheduled, by a serial: Close stops them
	serial  int
	errors  uint64       // validator calls that gave no verdict
	local   [2]uint64    // local publishes rejected, ignored
	calls   atomic.Int64 // messages queued or at a worker, their outcome not yet posted
	// events, in tests, receives the outcome of every call (nil: a
	// verdict given to the core); nil otherwise.
	events chan error
}

// stopLocked stops the retries not yet started; under n.mu, at Close.
func (v *validation) stopLocked() {
	for _, stop := range v.retries {
		stop()
	}
	clear(v.retries)
}

type validationJob struct {
	m     gossip.Message
	retry time.Duration // the back-off after a failure of this attempt
}

// startValidation starts the workers; under n.mu, at Start.
func (n *Node) startValidationLocked() {
	if n.cfg.Validator == nil {
		return
	}
	n.validation.queue = make(chan validationJob, gossip.MaxAwaiting)
	n.validation.results = make(chan validationResult, gossip.MaxAwaiting)
	n.validation.retries = make(map[int]func() bool)
	for range n.cfg.ValidateConcurrency {
		n.wg.Add(1)
		go n.validationWorker()
	}
}

// queueValidationLocked hands the messages of a Ready waiting for a verdict
// to the workers. The queue holds as many as the core lets wait, so it does
// not block.
func (n *Node) queueValidationLocked(ms []gossip.Message) {
	for _, m := range ms {
		n.queueJobLocked(validationJob{m: m, retry: validateRetryMin})
	}
}

func (n *Node) queueJobLocked(job validationJob) {
	select {
	case n.validation.queue <- job:
		n.validation.calls.Add(1)
	default:
		// Cannot happen: the queue holds MaxAwaiting, what the core lets
		// wait, and a message is in it, at a worker or in a retry, never
		// twice. The core drops it when it grows too old.
		n.logger.Error("validation queue full: a message waits until it is too old", "id", job.m.ID.String())
	}
}

func (n *Node) validationWorker() {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-n.done:
			return
		case job := <-n.validation.queue:
			n.validate(ctx, job)
		}
	}
}

// validate asks the validator about one message and hands the outcome to
// the node: at once on the system clock; on a virtual clock (a
// transport.Network, which only the test's goroutine may drive), at the
// node's next tick.
func (n *Node) validate(ctx context.Context, job validationJob) {
	vctx, cancel := context.WithTimeout(ctx, n.cfg.ValidateTimeout)
	v, err := n.cfg.Validator(vctx, job.m)
	cancel()
	if err == nil && (v < gossip.VerdictAccept || v > gossip.VerdictIgnore) {
		err = fmt.Errorf("node: the validator returned verdict %d", v)
	}
	n.validation.results <- validationResult{job: job, verdict: v, err: err}
	n.validation.calls.Add(-1)
	if n.validation.events != nil {
		n.validation.events <- err
	}
	if _, real := n.clock.(systemClock); real {
		n.mu.Lock()
		n.applyValidationsLocked()
		n.mu.Unlock()
	}
}

type validationResult struct {
	job     validationJob
	verdict gossip.Verdict
	err     error
}

// applyValidationsLocked gives the core the verdicts that came, and
// schedules another try of the calls that failed.
func (n *Node) applyValidationsLocked() {
	v := &n.validation
	for {
		var r validationResult
		select {
		case r = <-v.results:
		default:
			return
		}
		if n.closed {
			continue
		}
		if r.err == nil {
			n.core.Verdict(n.clock.Now(), r.job.m.ID, r.verdict)
			n.flushLocked()
			continue
		}
		v.errors++
		if v.errors == 1 || v.errors%1000 == 0 {
			n.logger.Warn("the validator gave no verdict; messages wait and it is asked again", "error", r.err.Error(), "failures", v.errors)
		}
		next := validationJob{m: r.job.m, retry: min(2*r.job.retry, validateRetryMax)}
		v.serial++
		serial := v.serial
		v.retries[serial] = n.afterLocked(r.job.retry, func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			delete(v.retries, serial)
			if !n.closed {
				n.queueJobLocked(next)
			}
		})
	}
}

// validateLocal asks the validator about a message about to be published
// here; its ID and Seq are not yet known (zero).
func (n *Node) validateLocal(ctx context.Context, topic string, payload []byte) error {
	if n.cfg.Validator == nil {
		return nil
	}
	vctx, cancel := context.WithTimeout(ctx, n.cfg.ValidateTimeout)
	defer cancel()
	v, err := n.cfg.Validator(vctx, gossip.Message{Origin: n.id, Created: n.clock.Now(), Topic: topic, Payload: payload})
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrValidatorUnavailable, err)
	case v == gossip.VerdictAccept:
		return nil
	case v == gossip.VerdictReject:
		n.mu.Lock()
		n.validation.local[0]++
		n.mu.Unlock()
		return ErrRejected
	case v == gossip.VerdictIgnore:
		n.mu.Lock()
		n.validation.local[1]++
		n.mu.Unlock()
		return ErrIgnored
	}
	return fmt.Errorf("%w: verdict %d", ErrValidatorUnavailable, v)
}
