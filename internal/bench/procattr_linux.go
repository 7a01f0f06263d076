//go:build linux

package bench

import (
	"os/exec"
	"syscall"
)

// setNodeProcAttr puts a node process in a process group of its own, so
// that a Ctrl-C in the terminal reaches only the parent, which then ends
// the run in order, and has the kernel kill it if the parent dies without
// closing its input. (Pdeathsig fires when the thread that started the
// child exits; the Go runtime ends a thread only when a goroutine locked
// to it exits, so in practice when the process does. The closed input
// ends the child in any case.)
func setNodeProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
