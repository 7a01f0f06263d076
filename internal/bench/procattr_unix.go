//go:build unix && !linux

package bench

import (
	"os/exec"
	"syscall"
)

// setNodeProcAttr puts a node process in a process group of its own, so
// that a Ctrl-C in the terminal reaches only the parent, which then ends
// the run in order. A node process whose parent died sees its input end,
// and exits.
func setNodeProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
