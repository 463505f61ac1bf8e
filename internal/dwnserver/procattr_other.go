//go:build !linux

package dwnserver

import "syscall"

func serverProcAttr() *syscall.SysProcAttr { return nil }
