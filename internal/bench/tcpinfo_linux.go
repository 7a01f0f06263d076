//go:build linux

package bench

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpiOptTimestamps is TCPI_OPT_TIMESTAMPS of linux/tcp.h.
const tcpiOptTimestamps = 1

// tcpHeaderBytes reads the segments conn has sent so far (tcpi_segs_out,
// pure ACKs included) and returns their IP and TCP headers. False if conn
// is not a TCP socket or the kernel does not say.
func tcpHeaderBytes(conn net.Conn) (uint64, bool) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	var infoErr error
	if err := raw.Control(func(fd uintptr) {
		info, infoErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || infoErr != nil {
		return 0, false
	}
	per := uint64(ipv4Header + tcpHeader)
	if info.Options&tcpiOptTimestamps != 0 {
		per += tcpTimestamps
	}
	return uint64(info.Segs_out) * per, true
}
