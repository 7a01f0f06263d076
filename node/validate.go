package node

import (
	"context"
	"errors"
	"fmt"
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
	retries map[int]func() bool // the retries scheduled, by a serial: Close stops them
	serial  int
	errors  uint64    // validator calls that gave no verdict
	local   [2]uint64 // local publishes rejected, ignored
	busy    int       // messages queued or at a worker (not waiting for a retry)
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
		select {
		case n.validation.queue <- validationJob{m: m, retry: validateRetryMin}:
			n.validation.busy++
		default:
			// Cannot happen: the queue holds MaxAwaiting, what the core
			// lets wait, and a message is in it, at a worker or in a
			// retry, never twice. The core drops it when it grows too old.
			n.logger.Error("validation queue full: a message waits until it is too old", "id", m.ID.String())
		}
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

// validate asks the validator about one message and gives the core its
// verdict, or schedules another try.
func (n *Node) validate(ctx context.Context, job validationJob) {
	vctx, cancel := context.WithTimeout(ctx, n.cfg.ValidateTimeout)
	v, err := n.cfg.Validator(vctx, job.m)
	cancel()
	if err == nil && (v < gossip.VerdictAccept || v > gossip.VerdictIgnore) {
		err = fmt.Errorf("node: the validator returned verdict %d", v)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.validation.busy--
	if n.validation.events != nil {
		defer func() { n.validation.events <- err }()
	}
	if err != nil {
		v := &n.validation
		v.errors++
		if v.errors == 1 || v.errors%1000 == 0 {
			n.logger.Warn("the validator gave no verdict; messages wait and it is asked again", "error", err.Error(), "failures", v.errors)
		}
		next := validationJob{m: job.m, retry: min(2*job.retry, validateRetryMax)}
		v.serial++
		serial := v.serial
		v.retries[serial] = n.afterLocked(job.retry, func() {
			n.mu.Lock()
			delete(v.retries, serial)
			v.busy++
			n.mu.Unlock()
			select {
			case v.queue <- next:
			case <-n.done:
			}
		})
		return
	}
	n.core.Verdict(n.clock.Now(), job.m.ID, v)
	n.flushLocked()
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
