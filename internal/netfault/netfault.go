// Package netfault injects faults into the requests package rtlink sends,
// for tests of the code built on it: fail the Nth change in a namespace
// and check what is left behind.
//
// An Interceptor is installed for a network namespace (Inject); every
// rtlink connection dialled into that namespace afterwards, and every
// clone of one, calls it before each request. Nothing of this is exported
// outside the module: production code never installs one, and rtlink
// looks for one only while some test has installed it.
package netfault

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Request describes a request a connection is about to send.
type Request struct {
	// Op and Link are the operation and the interface as rtlink's errors
	// name them ("create link", "vx0").
	Op, Link string
	// Changes tells a request that changes the kernel's state (create,
	// set, delete) from one that only reads it (get, dump).
	Changes bool
}

// Interceptor is called before each request. An error it returns fails
// the request as a kernel error would, and the request is not sent.
type Interceptor func(Request) error

// nsID identifies a network namespace: the device and inode of its file.
type nsID struct{ dev, ino uint64 }

var (
	active atomic.Int32 // interceptors installed
	mu     sync.Mutex
	byNS   = map[nsID]Interceptor{}
)

// Inject installs i for the network namespace whose file is at path (such
// as /run/netns/NAME) until the returned remove is called. Only one
// interceptor is installed per namespace at a time.
func Inject(path string, i Interceptor) (remove func(), err error) {
	id, err := statPath(path)
	if err != nil {
		return nil, fmt.Errorf("netfault: namespace %s: %w", path, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if byNS[id] != nil {
		return nil, fmt.Errorf("netfault: namespace %s has an interceptor already", path)
	}
	byNS[id] = i
	active.Add(1)
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if byNS[id] != nil {
			delete(byNS, id)
			active.Add(-1)
		}
	}, nil
}

// For returns the interceptor of the network namespace open as fd, or
// nil. It costs one atomic load while no interceptor is installed anywhere.
func For(fd int) Interceptor {
	if active.Load() == 0 || fd < 0 {
		return nil
	}
	id, err := statFd(fd)
	if err != nil {
		return nil
	}
	mu.Lock()
	defer mu.Unlock()
	return byNS[id]
}
