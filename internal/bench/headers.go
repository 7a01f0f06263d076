package bench

// Wire bytes are counted with the headers the kernel adds: the benchmark
// runs on 127.0.0.1, so IPv4 without options.
const (
	ipv4Header = 20
	udpHeader  = 8
	// udpIPv4Headers are the headers of one UDP datagram.
	udpIPv4Headers = ipv4Header + udpHeader
	// tcpHeader is a TCP header without options; Linux adds the timestamp
	// option (10 bytes, padded to 12) to every segment of a connection
	// that negotiated it.
	tcpHeader     = 20
	tcpTimestamps = 12
)
