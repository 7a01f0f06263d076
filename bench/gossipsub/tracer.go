package main

import (
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// tracer is one host's pubsub.RawTracer: it counts the copies of messages
// the host already had, what pubsub dropped, and the host's mesh.
type tracer struct {
	duplicates atomic.Uint64

	mu    sync.Mutex
	drops map[string]uint64
	mesh  map[peer.ID]bool // the topic's mesh peers (there is one topic)
}

func newTracer() *tracer {
	return &tracer{drops: map[string]uint64{}, mesh: map[peer.ID]bool{}}
}

// Drop reasons, besides pubsub's own Reject* strings.
const (
	dropRPCQueueFull  = "rpc_queue_full"      // DropRPC: a peer's outbound queue was full
	dropUndeliverable = "subscriber_too_slow" // UndeliverableMessage: the subscription's buffer was full
	dropThrottled     = "peer_throttled"      // ThrottlePeer: the peer gater refused a peer's RPC
)

// tracerCounters are a tracer's figures at one moment.
type tracerCounters struct {
	duplicates uint64
	drops      map[string]uint64
}

func (t *tracer) counters() tracerCounters {
	t.mu.Lock()
	defer t.mu.Unlock()
	drops := make(map[string]uint64, len(t.drops))
	for reason, n := range t.drops {
		drops[reason] = n
	}
	return tracerCounters{duplicates: t.duplicates.Load(), drops: drops}
}

// meshSize is the number of peers in the host's mesh for the topic.
func (t *tracer) meshSize() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mesh)
}

func (t *tracer) drop(reason string) {
	t.mu.Lock()
	t.drops[reason]++
	t.mu.Unlock()
}

func (t *tracer) DuplicateMessage(*pubsub.Message) { t.duplicates.Add(1) }

func (t *tracer) RejectMessage(_ *pubsub.Message, reason string) {
	if reason == pubsub.RejectSelfOrigin {
		// The origin receiving its own message back: pubsub rejects it
		// before its duplicate check, but it is a copy the host had.
		t.duplicates.Add(1)
		return
	}
	t.drop(reason)
}

func (t *tracer) DropRPC(*pubsub.RPC, peer.ID)         { t.drop(dropRPCQueueFull) }
func (t *tracer) UndeliverableMessage(*pubsub.Message) { t.drop(dropUndeliverable) }
func (t *tracer) ThrottlePeer(peer.ID)                 { t.drop(dropThrottled) }

func (t *tracer) Graft(p peer.ID, _ string) {
	t.mu.Lock()
	t.mesh[p] = true
	t.mu.Unlock()
}

func (t *tracer) Prune(p peer.ID, _ string) {
	t.mu.Lock()
	delete(t.mesh, p)
	t.mu.Unlock()
}

// OnClosedOutboundStream: pubsub takes a departed peer out of the mesh
// without a Prune.
func (t *tracer) OnClosedOutboundStream(p peer.ID) { t.Prune(p, "") }

// The events below are not counted.

func (t *tracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *tracer) Join(string)                                          {}
func (t *tracer) Leave(string)                                         {}
func (t *tracer) ValidateMessage(*pubsub.Message)                      {}
func (t *tracer) DeliverMessage(*pubsub.Message)                       {}
func (t *tracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *tracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t *tracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}

var _ pubsub.RawTracer = (*tracer)(nil)
