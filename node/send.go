package node

import (
	"context"
	"errors"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/registry/dht"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/transport"
	"github.com/hearsay-io/hearsay/wire"
)

// Publish publishes a message to the cluster and returns its ID. The message
// is also delivered to this node's own subscribers. Errors:
// gossip.ErrInvalidTopic, gossip.ErrMessageTooLarge, gossip.ErrBackpressure
// (retry later), ErrClosed, and with a validator ErrRejected, ErrIgnored
// and ErrValidatorUnavailable.
func (n *Node) Publish(ctx context.Context, topic string, payload []byte) (gossip.MessageID, error) {
	if err := ctx.Err(); err != nil {
		return gossip.MessageID{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return gossip.MessageID{}, ErrClosed
	}
	if n.cfg.Validator != nil {
		// Asked without the lock: the validator may take its time.
		n.mu.Unlock()
		err := n.validateLocal(ctx, topic, payload)
		n.mu.Lock()
		if err != nil {
			return gossip.MessageID{}, err
		}
		if n.closed {
			return gossip.MessageID{}, ErrClosed
		}
	}
	m, err := n.core.Push(n.clock.Now(), topic, payload)
	if err != nil {
		switch { // the API counts what it refuses before reaching here itself
		case errors.Is(err, gossip.ErrBackpressure):
			n.refused[refusedBackpressure]++
		case errors.Is(err, gossip.ErrMessageTooLarge):
			n.refused[refusedTooLarge]++
		case errors.Is(err, gossip.ErrInvalidTopic):
			n.refused[refusedInvalidTopic]++
		default:
			n.refused[refusedError]++
		}
		return gossip.MessageID{}, err
	}
	n.flushLocked()
	return m.ID, nil
}

// flushLocked sends the core's datagrams and hands its messages to
// subscribers. The datagrams must go out before the core's next input.
func (n *Node) flushLocked() {
	rd := n.core.Ready()
	now := n.clock.Now()
	for _, d := range rd.Datagrams {
		if t, _ := wire.TypeOf(d.Data); t == wire.Pull {
			n.peers.pulled(d.To, now)
		}
	}
	n.sendLocked(rd.Datagrams, now)
	for _, m := range rd.Messages {
		for s := range n.subs {
			s.offer(m)
		}
	}
	if len(rd.Validate) > 0 {
		n.queueValidationLocked(rd.Validate)
	}
	n.kickTickLocked()
}

// sendLocked seals (when encrypted) and sends datagrams, within the send
// limits, in one batch: one system call for up to 64 datagrams where the
// platform allows.
func (n *Node) sendLocked(datagrams []gossip.Datagram, now time.Time) {
	encrypted := n.cfg.Keyring.Enabled()
	if encrypted {
		// Sealed copies go into one arena, sized up front so that the
		// slices into it stay valid.
		size := 0
		for _, d := range datagrams {
			size += len(d.Data) + security.Overhead
		}
		if cap(n.sealBuf) < size {
			n.sealBuf = make([]byte, 0, size)
		}
		n.sealBuf = n.sealBuf[:0]
	}
	batch := n.batch[:0]
	for _, d := range datagrams {
		data := d.Data
		size := len(data)
		if encrypted {
			size += security.Overhead
		}
		// The DHT's own requests are not answers a forged source could aim
		// at a victim: they may go to addresses that never wrote to us.
		request := n.dht != nil && dht.IsRequest(data)
		if reason := n.limits.allow(d.To, size, now, request); reason != "" {
			n.drops[reason]++
			continue
		}
		if encrypted {
			start := len(n.sealBuf)
			sealed, err := n.sealer.Seal(n.sealBuf, data, now)
			if err != nil {
				n.drops["seal_error"]++
				continue
			}
			n.sealBuf, data = sealed, sealed[start:len(sealed):len(sealed)]
		}
		batch = append(batch, transport.Datagram{To: d.To, Data: data})
	}
	if len(batch) > 0 {
		before := n.transport.Stats().WriteErrors
		if err := n.transport.SendBatch(batch); err != nil {
			n.sendErr += n.transport.Stats().WriteErrors - before
			n.logger.Debug("send failed", "err", err)
		}
	}
	clear(batch) // drop the references to the core's buffers
	n.batch = batch[:0]
}
