//go:build linux

package main

import (
	"syscall"

	"golang.org/x/sys/unix"
)

type syscallRawConn = syscall.RawConn

// Header sizes: IPv4 without options, TCP without options, and the
// timestamp option (10 bytes, padded to 12) that Linux sends on every
// segment of a connection that negotiated it.
const (
	ipv4Header      = 20
	tcpHeader       = 20
	tcpTimestamps   = 12
	tcpiOptTimestmp = 1 // TCPI_OPT_TIMESTAMPS in linux/tcp.h
)

// socketSegments reads a socket's segments sent (tcpi_segs_out, which
// counts pure ACKs as well) and estimates their headers.
func socketSegments(raw syscall.RawConn) segments {
	var info *unix.TCPInfo
	var infoErr error
	if err := raw.Control(func(fd uintptr) {
		info, infoErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || infoErr != nil {
		return segments{}
	}
	per := uint64(ipv4Header + tcpHeader)
	if info.Options&tcpiOptTimestmp != 0 {
		per += tcpTimestamps
	}
	n := uint64(info.Segs_out)
	return segments{count: n, headers: n * per, known: true}
}
