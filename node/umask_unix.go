//go:build unix

package node

import "syscall"

func umask(mask int) int { return syscall.Umask(mask) }
