package main

import (
	"net/http"
	"net/http/pprof"
)

// pprofHandler serves the Go profiler under /debug/pprof/ for --api-debug.
// It is a mux of its own, mounted behind the API's token, rather than
// http.DefaultServeMux, where importing net/http/pprof also puts it.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
