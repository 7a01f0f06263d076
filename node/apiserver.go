package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// ListenAPI listens for the API on addr: "host:port" for TCP, or
// "unix:/path/to.sock" for a Unix socket, created with mode 0600 so that only
// the node's user can talk to it. A stale socket file left by a crashed agent
// is replaced; any other file at that path is not. Errors do not name the
// flag or setting: the caller does.
func ListenAPI(addr string) (net.Listener, error) {
	path, isUnix := strings.CutPrefix(addr, "unix:")
	if !isUnix {
		return net.Listen("tcp", addr)
	}
	if path == "" {
		return nil, errors.New("unix: needs a path, as in unix:/run/hearsay.sock")
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale socket: %w", err)
		}
	}
	// Create the socket with no permissions for others from the start,
	// rather than chmod it after a window in which anyone could connect.
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// APIServerConfig bounds what a client may take from the API server.
type APIServerConfig struct {
	// ReadHeaderTimeout cuts off a client that sends its headers too slowly
	// (slowloris). Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers. Default 64 KiB.
	MaxHeaderBytes int
	// TLS, if set, is the server's TLS configuration: serve with
	// ServeTLS(listener, "", ""). APITLSConfig loads one. Default nil:
	// plain HTTP.
	TLS *tls.Config
}

// APITLSConfig loads a PEM certificate (its chain may follow it) and its
// private key for an HTTPS API, TLS 1.2 at least. Errors name the file.
func APITLSConfig(certFile, keyFile string) (*tls.Config, error) {
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Stat(f); err != nil {
			return nil, err
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// streamEnder is a handler with long-lived responses to end before a
// shutdown: an *API, or a wrapper of one that passes EndStreams on.
type streamEnder interface{ EndStreams() }

// NewAPIServer returns an http.Server for h with timeouts against slow
// clients. It sets no WriteTimeout, which would end event streams: streams
// set a deadline on each write instead, and request bodies are read under
// APIConfig.BodyTimeout. If h has an EndStreams method, as an *API does,
// the server's Shutdown calls it, so that open event streams end with the
// "node shutting down" event rather than holding the shutdown up.
func NewAPIServer(h http.Handler, cfg APIServerConfig) *http.Server {
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout: cfg.IdleTimeout, MaxHeaderBytes: cfg.MaxHeaderBytes, TLSConfig: cfg.TLS}
	if se, ok := h.(streamEnder); ok {
		srv.RegisterOnShutdown(se.EndStreams)
	}
	return srv
}
