// Package dnstest is a real DNS server on 127.0.0.1 for tests (miekg/dns
// over UDP), whose A and SRV records a test changes while it runs, so that
// the DNS registry is tested through the resolver it uses in production.
package dnstest

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	mdns "github.com/miekg/dns"
)

// Server answers A and SRV queries from the records set on it; a name it
// has no records for gets an empty answer. It is safe for concurrent use.
type Server struct {
	addr string

	mu      sync.Mutex
	a       map[string][]netip.Addr
	srv     map[string][]*mdns.SRV
	fail    bool
	queries int
}

// Start starts a server on a free port of 127.0.0.1, shut down when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{a: map[string][]netip.Addr{}, srv: map[string][]*mdns.SRV{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	started := make(chan struct{})
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(s.answer), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	<-started
	s.addr = pc.LocalAddr().String()
	return s
}

// Addr is the server's "127.0.0.1:port".
func (s *Server) Addr() string { return s.addr }

// SetA makes name's A and AAAA records ips (none: an empty answer).
func (s *Server) SetA(name string, ips ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.a[mdns.Fqdn(name)] = ips
}

// SetSRV makes name's SRV records one per port, all with the target
// target (which needs A records of its own).
func (s *Server) SetSRV(name, target string, ports ...uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rrs []*mdns.SRV
	for _, p := range ports {
		rrs = append(rrs, &mdns.SRV{Hdr: header(name, mdns.TypeSRV), Port: p, Target: mdns.Fqdn(target)})
	}
	s.srv[mdns.Fqdn(name)] = rrs
}

// Fail makes every answer SERVFAIL while on.
func (s *Server) Fail(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = on
}

// Queries counts the queries answered so far.
func (s *Server) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

func header(name string, rrtype uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: mdns.Fqdn(name), Rrtype: rrtype, Class: mdns.ClassINET} // TTL 0: nothing cached
}

func (s *Server) answer(w mdns.ResponseWriter, q *mdns.Msg) {
	m := new(mdns.Msg)
	m.SetReply(q)
	s.mu.Lock()
	s.queries++
	if s.fail {
		m.Rcode = mdns.RcodeServerFailure
	}
	for _, qq := range q.Question {
		name := strings.ToLower(qq.Name)
		switch {
		case s.fail:
		case qq.Qtype == mdns.TypeSRV:
			for _, rr := range s.srv[name] {
				m.Answer = append(m.Answer, rr)
			}
		case qq.Qtype == mdns.TypeA || qq.Qtype == mdns.TypeAAAA:
			for _, ip := range s.a[name] {
				if ip.Is4() == (qq.Qtype == mdns.TypeA) {
					if ip.Is4() {
						m.Answer = append(m.Answer, &mdns.A{Hdr: header(name, mdns.TypeA), A: ip.AsSlice()})
					} else {
						m.Answer = append(m.Answer, &mdns.AAAA{Hdr: header(name, mdns.TypeAAAA), AAAA: ip.AsSlice()})
					}
				}
			}
		}
	}
	s.mu.Unlock()
	_ = w.WriteMsg(m)
}
