package cluster

import "syscall"

// procAttr makes a daemon die with the harness: a run cut short (a broken
// stdout pipe, a crash) leaves no daemon behind on its port.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
