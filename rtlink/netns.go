package rtlink

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// NetNS is an open handle on a network namespace. Its zero value is not
// usable; obtain one with [OpenNetNS], [OpenNetNSPid] or [NetNSFromFd].
type NetNS struct {
	f *os.File
}

// netnsRunDir is where iproute2 bind-mounts named namespaces.
const netnsRunDir = "/run/netns"

// OpenNetNS opens the network namespace at path. A path without a slash is
// taken as a name created by `ip netns add` and looked up under /run/netns.
func OpenNetNS(path string) (*NetNS, error) {
	if !filepath.IsAbs(path) && filepath.Base(path) == path {
		path = filepath.Join(netnsRunDir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, opError("open netns", path, err)
	}
	isNS, err := isNetNSFile(f)
	if err != nil {
		f.Close()
		return nil, opError("open netns", path, err)
	}
	if !isNS {
		f.Close()
		return nil, errorf("open netns", path, "not a network namespace file")
	}
	return &NetNS{f: f}, nil
}

// OpenNetNSPid opens the network namespace of the process pid.
func OpenNetNSPid(pid int) (*NetNS, error) {
	return OpenNetNS("/proc/" + strconv.Itoa(pid) + "/ns/net")
}

// NetNSFromFd wraps an already open namespace file descriptor. The NetNS
// takes ownership of fd and closes it on Close.
func NetNSFromFd(fd int) *NetNS {
	return &NetNS{f: os.NewFile(uintptr(fd), "netns:"+strconv.Itoa(fd))}
}

// Fd returns the namespace's file descriptor, valid until Close.
func (ns *NetNS) Fd() int { return int(ns.f.Fd()) }

// String returns the path or description the namespace was opened from.
func (ns *NetNS) String() string { return ns.f.Name() }

// Close releases the handle. The namespace itself lives on while any process
// or mount holds it.
func (ns *NetNS) Close() error { return ns.f.Close() }

// Inode returns the namespace's inode number, which identifies it: two handles
// on the same namespace have the same inode.
func (ns *NetNS) Inode() (uint64, error) {
	ino, err := fileInode(ns.Fd())
	if err != nil {
		return 0, opError("stat netns", ns.String(), err)
	}
	return ino, nil
}

// Do runs fn on a new thread switched into the namespace, and waits for it.
// Sockets fn opens belong to the namespace and stay usable from any
// goroutine afterwards. The caller's thread never changes namespace; the
// thread fn ran on is reused only if switching it back succeeded, and is
// otherwise ended with its goroutine.
func (ns *NetNS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- opError("open thread netns", ns.String(), err)
			return // the thread stays locked and ends with the goroutine
		}
		defer orig.Close()
		if err := setNetNS(ns.Fd()); err != nil {
			errc <- opError("enter netns", ns.String(), err)
			return
		}
		ferr := fn()
		if err := setNetNS(int(orig.Fd())); err != nil {
			errc <- errors.Join(ferr, opError("leave netns", ns.String(), err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
