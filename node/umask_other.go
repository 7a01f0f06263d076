//go:build !unix

package node

func umask(mask int) int { return mask }
