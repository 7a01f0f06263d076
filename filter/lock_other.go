//go:build !unix && !windows

package filter

// isLockHeld cannot tell a held lock from other errors on this platform;
// OpenLevelDB then reports the lock error as it comes.
func isLockHeld(error) bool { return false }
