//go:build !linux

package netfault

import (
	"errors"
	"runtime"
)

var errNoNetNS = errors.New("netfault: " + runtime.GOOS + " has no network namespaces")

func statPath(string) (nsID, error) { return nsID{}, errNoNetNS }

func statFd(int) (nsID, error) { return nsID{}, errNoNetNS }
