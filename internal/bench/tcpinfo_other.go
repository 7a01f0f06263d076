//go:build !linux

package bench

import "net"

// tcpHeaderBytes is unknown outside Linux.
func tcpHeaderBytes(net.Conn) (uint64, bool) { return 0, false }
