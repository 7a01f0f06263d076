//go:build unix

package filter

import (
	"errors"
	"os"
	"syscall"
)

// isLockHeld reports whether err, from leveldb.OpenFile, means that the
// directory's LOCK file is held by someone else. goleveldb returns the bare
// errno of flock (fcntl on Solaris); an *os.PathError comes from opening
// the file instead, for example for lack of permission.
func isLockHeld(err error) bool {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES)
}
