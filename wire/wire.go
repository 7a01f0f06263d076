// Package wire owns what every hearsay datagram shares: the 4-byte header
// (magic 'H' 'S', version, packet type), the table of every packet type of
// the protocol and which component owns it, the sealed flag, size limits and
// the strict varints the bodies are made of.
//
// A datagram's header is parsed once, by Parse, and its body handed to the
// owner of its type: the gossip core (package gossip), anti-entropy (package
// merkle), peer hygiene (package node) or the DHT (package registry/dht).
// The bodies are described byte by byte in docs/protocol.md,
// docs/anti-entropy.md and docs/registries.md.
package wire

import (
	"errors"
	"fmt"
)

// The header every datagram starts with.
const (
	Magic0     = 'H'
	Magic1     = 'S'
	Version    = 1 // the wire version this package speaks
	HeaderSize = 4 // magic (2 bytes), version, packet type
	// SealedFlag is set in the type byte of a sealed (encrypted) datagram;
	// package security owns the sealed layout.
	SealedFlag = 0x80
)

// Datagram size limits.
const (
	MinPacketSize = 512   // the smallest MaxPacketSize a node may be configured with
	MaxUDPPayload = 65507 // the largest UDP payload over IPv4
)

// PacketType is the fourth byte of every datagram.
type PacketType byte

// Every packet type of wire version 1.
const (
	// Gossip (package gossip), 0x01 to 0x0f.
	Pull     PacketType = 0x01 // a pull request: a digest of what the sender holds
	Messages PacketType = 0x02 // messages, in answer to a pull or a fetch
	Fetch    PacketType = 0x03 // "send me these messages", by ID (anti-entropy repairs)
	PullAck  PacketType = 0x04 // "I heard your pull and have nothing for you" (package node); header only
	More     PacketType = 0x05 // "an answer was cut short by its budget; pull again"; header only
	Hint     PacketType = 0x06 // "I now have these messages": to a parked long-poll pull, ranges only

	// Anti-entropy (package merkle), 0x10 to 0x1f.
	AEQuery    PacketType = 0x10 // v1, initiator -> responder: tree positions to compare
	AEAnswer   PacketType = 0x11 // v1, responder -> initiator: the responder's nodes there
	AEQueryV2  PacketType = 0x12 // v2, initiator -> responder: cells to compare, by short checks
	AEAnswerV2 PacketType = 0x13 // v2, responder -> initiator: the cells that differ, summarized

	// The DHT registry (package registry/dht), 0x20 to 0x2f.
	DHTPing     PacketType = 0x20 // "are you there?"; answered by DHTPong
	DHTPong     PacketType = 0x21 // the answer to a DHTPing
	DHTFindNode PacketType = 0x22 // "whom do you know close to this ID?"; answered by DHTNodes
	DHTNodes    PacketType = 0x23 // contacts close to a DHTFindNode's target
)

// Owner is the component a packet type belongs to.
type Owner uint8

// Owners of packet types.
const (
	OwnerNone        Owner = iota // an unassigned type
	OwnerGossip                   // package gossip
	OwnerAntiEntropy              // package merkle, driven by the gossip core
	OwnerPeers                    // the node's peer hygiene (PullAck)
	OwnerDHT                      // package registry/dht
)

func (o Owner) String() string {
	switch o {
	case OwnerGossip:
		return "gossip"
	case OwnerAntiEntropy:
		return "anti-entropy"
	case OwnerPeers:
		return "peers"
	case OwnerDHT:
		return "dht"
	}
	return "none"
}

// Owner returns the component that handles packets of type t. Ranges are
// reserved whole: a type of a component's range that it does not know is
// its to refuse (and count).
func (t PacketType) Owner() Owner {
	switch {
	case t == PullAck:
		return OwnerPeers
	case t >= 0x01 && t <= 0x0f:
		return OwnerGossip
	case t >= 0x10 && t <= 0x1f:
		return OwnerAntiEntropy
	case t >= 0x20 && t <= 0x2f:
		return OwnerDHT
	}
	return OwnerNone
}

var typeNames = map[PacketType]string{
	Pull: "pull", Messages: "messages", Fetch: "fetch", PullAck: "pull-ack", More: "more", Hint: "hint",
	AEQuery: "ae-query", AEAnswer: "ae-answer", AEQueryV2: "ae-query-v2", AEAnswerV2: "ae-answer-v2",
	DHTPing: "dht-ping", DHTPong: "dht-pong", DHTFindNode: "dht-find-node", DHTNodes: "dht-nodes",
}

func (t PacketType) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type-0x%02x", byte(t))
}

// Decoding errors. Each names what was wrong; callers count them as drops.
var (
	ErrShortPacket   = errors.New("wire: datagram shorter than its header")
	ErrBadMagic      = errors.New("wire: not a hearsay datagram (bad magic)")
	ErrVersion       = errors.New("wire: unsupported version")
	ErrTruncated     = errors.New("wire: truncated")
	ErrMalformed     = errors.New("wire: malformed")
	ErrTrailingBytes = errors.New("wire: trailing bytes")
)

// AppendHeader appends the 4-byte header of a datagram of type t.
func AppendHeader(dst []byte, t PacketType) []byte {
	return append(dst, Magic0, Magic1, Version, byte(t))
}

// Parse checks a plaintext datagram's header and returns its type and body.
func Parse(datagram []byte) (PacketType, []byte, error) {
	if len(datagram) < HeaderSize {
		return 0, nil, ErrShortPacket
	}
	if datagram[0] != Magic0 || datagram[1] != Magic1 {
		return 0, nil, ErrBadMagic
	}
	if datagram[2] != Version {
		return 0, nil, fmt.Errorf("%w: %d", ErrVersion, datagram[2])
	}
	return PacketType(datagram[3]), datagram[HeaderSize:], nil
}

// TypeOf returns the packet type of a datagram with a valid header.
func TypeOf(datagram []byte) (PacketType, bool) {
	t, _, err := Parse(datagram)
	return t, err == nil
}
