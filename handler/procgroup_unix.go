//go:build unix

package handler

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup runs cmd in a new process group, and makes its
// context's cancellation kill the whole group.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
