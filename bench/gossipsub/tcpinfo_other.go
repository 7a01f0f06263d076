//go:build !linux

package main

import "syscall"

type syscallRawConn = syscall.RawConn

// socketSegments is unknown outside Linux.
func socketSegments(syscall.RawConn) segments { return segments{} }
