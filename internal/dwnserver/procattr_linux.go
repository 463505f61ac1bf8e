package dwnserver

import "syscall"

// serverProcAttr makes the kernel SIGTERM a server whose parent dies (a test binary killed
// by a timeout, say), so no orphaned server keeps its port and tmpfs data.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
