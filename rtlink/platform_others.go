//go:build !linux

package rtlink

import (
	"fmt"
	"runtime"
)

// errNoRtnetlink is what every operation of this package returns outside
// Linux: the package builds everywhere, so that code importing it (or
// package vxlan) builds on a developer's machine, but only Linux has
// rtnetlink.
var errNoRtnetlink = fmt.Errorf("%w: %s lacks rtnetlink (Linux only)", ErrNotSupported, runtime.GOOS)

func isNetNSFile(interface{ Fd() uintptr }) (bool, error) { return false, errNoRtnetlink }

func fileInode(int) (uint64, error) { return 0, errNoRtnetlink }

func setNetNS(int) error { return errNoRtnetlink }

func dupCloexec(int) (int, error) { return -1, errNoRtnetlink }
