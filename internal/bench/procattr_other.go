//go:build !unix

package bench

import "os/exec"

// setNodeProcAttr does nothing here: a node process whose parent died sees
// its input end, and exits.
func setNodeProcAttr(*exec.Cmd) {}
