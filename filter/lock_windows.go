//go:build windows

package filter

import (
	"errors"
	"syscall"
)

// isLockHeld reports whether err, from leveldb.OpenFile, means that the
// directory's LOCK file is held by someone else: goleveldb opens it without
// sharing, and Windows refuses a second open.
func isLockHeld(err error) bool {
	const (
		errorSharingViolation syscall.Errno = 32
		errorLockViolation    syscall.Errno = 33
	)
	return errors.Is(err, errorSharingViolation) || errors.Is(err, errorLockViolation)
}
