package dht

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/wire"
)

// The DHT's packet types are package wire's (wire.DHTPing, wire.DHTPong,
// wire.DHTFindNode, wire.DHTNodes: the range 0x20 to 0x2f, wire.OwnerDHT);
// docs/registries.md gives each packet byte by byte.

// IsPacket reports whether datagram is a plaintext DHT datagram: a hearsay
// header of this wire version whose type the DHT owns.
func IsPacket(datagram []byte) bool {
	t, ok := wire.TypeOf(datagram)
	return ok && t.Owner() == wire.OwnerDHT
}

// IsRequest reports whether datagram is a plaintext DHT request (PING or
// FIND_NODE). Requests are this node's own traffic, bounded by the table's
// configuration, not answers that a forged source address could aim at a
// victim; a runtime that caps what it sends to unknown addresses (three
// times what they sent, RFC 9000 §8) lets them through, or the table could
// never bootstrap nor reach the nodes its lookups discover. The table caps
// its own answers to unverified addresses.
func IsRequest(datagram []byte) bool {
	t, ok := wire.TypeOf(datagram)
	return ok && (t == wire.DHTPing || t == wire.DHTFindNode)
}

// Sizes on the wire.
const (
	// requestHeaderSize is what every DHT packet starts with: the 4-byte
	// header, the sender's ID and the request ID.
	requestHeaderSize = wire.HeaderSize + 16 + 8
	// PingSize is the size of a PING or PONG datagram.
	PingSize = requestHeaderSize
	// FindNodeSize is the size of a FIND_NODE datagram without padding.
	FindNodeSize = requestHeaderSize + 16
	// nodesHeaderSize is a NODES datagram without its contacts.
	nodesHeaderSize = requestHeaderSize + 1
	// MaxNodesPerPacket bounds the contacts of one NODES datagram, and K.
	MaxNodesPerPacket = 32
	// contactSize4 and contactSize6 are the sizes of an IPv4 and an IPv6
	// contact: ID, family, address, port.
	contactSize4 = 16 + 1 + 4 + 2
	contactSize6 = 16 + 1 + 16 + 2
	// MaxNodesSize is the largest NODES datagram: 32 IPv6 contacts.
	MaxNodesSize = nodesHeaderSize + MaxNodesPerPacket*contactSize6
)

// Address families of a contact.
const (
	family4 = 4
	family6 = 6
)

// Contact is a node as the DHT knows it: its ID and its gossip address.
type Contact struct {
	ID   gossip.NodeID
	Addr netip.AddrPort
}

// Packet is a decoded DHT datagram.
type Packet struct {
	Type      wire.PacketType
	Sender    gossip.NodeID // the ID of the node that sent the datagram
	RequestID uint64        // chosen by the requester, echoed by the answer
	Target    gossip.NodeID // FIND_NODE only
	// Padding is the number of zero bytes after a FIND_NODE's target. A
	// node answers a requester it has not verified with at most three times
	// the request's size, so requests are padded to make room for a full
	// answer (see FindNodePadding).
	Padding int
	Nodes   []Contact // NODES only
}

// FindNodePadding is the padding that lets a FIND_NODE be answered with k
// IPv6 contacts, and a verification PING, within three times its size.
func FindNodePadding(k int) int {
	need := nodesHeaderSize + k*contactSize6 + PingSize
	return max(0, (need+2)/3-FindNodeSize)
}

// AppendPacket appends the whole datagram of p, header included. Contacts
// of a NODES packet beyond MaxNodesPerPacket are left out; their addresses
// must be valid (IPv6 zones are dropped, IPv4-mapped addresses sent as
// IPv4).
func AppendPacket(dst []byte, p *Packet) []byte {
	dst = wire.AppendHeader(dst, p.Type)
	dst = append(dst, p.Sender[:]...)
	dst = binary.BigEndian.AppendUint64(dst, p.RequestID)
	switch p.Type {
	case wire.DHTFindNode:
		dst = append(dst, p.Target[:]...)
		for range max(p.Padding, 0) {
			dst = append(dst, 0)
		}
	case wire.DHTNodes:
		nodes := p.Nodes[:min(len(p.Nodes), MaxNodesPerPacket)]
		dst = append(dst, byte(len(nodes)))
		for _, c := range nodes {
			dst = appendContact(dst, c)
		}
	}
	return dst
}

func appendContact(dst []byte, c Contact) []byte {
	dst = append(dst, c.ID[:]...)
	return appendAddr(dst, c.Addr)
}

func appendAddr(dst []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap()
	if a.Is4() {
		b := a.As4()
		dst = append(dst, family4)
		dst = append(dst, b[:]...)
	} else {
		b := a.As16()
		dst = append(dst, family6)
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint16(dst, ap.Port())
}

func contactSize(c Contact) int {
	if c.Addr.Addr().Unmap().Is4() {
		return contactSize4
	}
	return contactSize6
}

// DecodePacket decodes a whole DHT datagram. It allocates at most in
// proportion to len(datagram); the Nodes slice is new.
func DecodePacket(datagram []byte) (Packet, error) {
	var p Packet
	err := decodePacket(&p, datagram)
	return p, err
}

// decodePacket decodes into p, reusing p.Nodes.
func decodePacket(p *Packet, datagram []byte) error {
	t, b, err := wire.Parse(datagram)
	if err != nil {
		return err
	}
	return decodeBody(p, t, b)
}

// decodeBody decodes the body b of a datagram of type t into p.
func decodeBody(p *Packet, t wire.PacketType, b []byte) error {
	var err error
	p.Type = t
	p.Nodes = p.Nodes[:0]
	p.Target = gossip.NodeID{}
	p.Padding = 0
	if t < wire.DHTPing || t > wire.DHTNodes {
		return fmt.Errorf("dht: %w: packet type %v", wire.ErrMalformed, t)
	}
	if len(b) < 16+8 {
		return fmt.Errorf("dht: %v: %w", t, wire.ErrTruncated)
	}
	copy(p.Sender[:], b)
	if p.Sender.IsZero() {
		return fmt.Errorf("dht: %w: zero sender ID", wire.ErrMalformed)
	}
	p.RequestID = binary.BigEndian.Uint64(b[16:])
	b = b[24:]
	switch t {
	case wire.DHTFindNode:
		if len(b) < 16 {
			return fmt.Errorf("dht: find_node: %w", wire.ErrTruncated)
		}
		copy(p.Target[:], b)
		b = b[16:]
		for _, x := range b {
			if x != 0 {
				return fmt.Errorf("dht: %w: non-zero padding", wire.ErrMalformed)
			}
		}
		p.Padding, b = len(b), nil
	case wire.DHTNodes:
		if len(b) < 1 {
			return fmt.Errorf("dht: nodes: %w", wire.ErrTruncated)
		}
		n := int(b[0])
		b = b[1:]
		if n > MaxNodesPerPacket {
			return fmt.Errorf("dht: %w: %d contacts, at most %d", wire.ErrMalformed, n, MaxNodesPerPacket)
		}
		if n*contactSize4 > len(b) {
			return fmt.Errorf("dht: nodes: %w: %d contacts in %d bytes", wire.ErrTruncated, n, len(b))
		}
		for range n {
			var c Contact
			if c, b, err = decodeContact(b); err != nil {
				return err
			}
			p.Nodes = append(p.Nodes, c)
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("dht: %v: %w", t, wire.ErrTrailingBytes)
	}
	return nil
}

func decodeContact(b []byte) (Contact, []byte, error) {
	var c Contact
	if len(b) < 16 {
		return c, nil, fmt.Errorf("dht: contact: %w", wire.ErrTruncated)
	}
	copy(c.ID[:], b)
	if c.ID.IsZero() {
		return c, nil, fmt.Errorf("dht: %w: zero contact ID", wire.ErrMalformed)
	}
	var err error
	c.Addr, b, err = decodeAddr(b[16:])
	return c, b, err
}

func decodeAddr(b []byte) (netip.AddrPort, []byte, error) {
	if len(b) < 1 {
		return netip.AddrPort{}, nil, fmt.Errorf("dht: address: %w", wire.ErrTruncated)
	}
	var a netip.Addr
	switch b[0] {
	case family4:
		if len(b) < 1+4+2 {
			return netip.AddrPort{}, nil, fmt.Errorf("dht: address: %w", wire.ErrTruncated)
		}
		a = netip.AddrFrom4([4]byte(b[1:5]))
		b = b[5:]
	case family6:
		if len(b) < 1+16+2 {
			return netip.AddrPort{}, nil, fmt.Errorf("dht: address: %w", wire.ErrTruncated)
		}
		a = netip.AddrFrom16([16]byte(b[1:17]))
		if a.Is4In6() {
			// One address, one encoding: IPv4 travels as family 4.
			return netip.AddrPort{}, nil, fmt.Errorf("dht: %w: IPv4-mapped address as IPv6", wire.ErrMalformed)
		}
		b = b[17:]
	default:
		return netip.AddrPort{}, nil, fmt.Errorf("dht: %w: address family %d", wire.ErrMalformed, b[0])
	}
	port := binary.BigEndian.Uint16(b)
	if port == 0 {
		return netip.AddrPort{}, nil, fmt.Errorf("dht: %w: port 0", wire.ErrMalformed)
	}
	return netip.AddrPortFrom(a, port), b[2:], nil
}

// usableAddr reports whether a contact's address is one to send to.
func usableAddr(ap netip.AddrPort) bool {
	a := ap.Addr()
	return ap.IsValid() && ap.Port() != 0 && !a.IsUnspecified() && !a.IsMulticast() &&
		!(a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}))
}

// unmap turns an IPv4-mapped IPv6 address into IPv4, as UDP and the
// in-memory network do with source addresses, so that one peer is one key.
func unmap(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}
