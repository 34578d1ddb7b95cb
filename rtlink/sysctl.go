package rtlink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
)

// OpDisableIPv6 is the operation of DisableIPv6, as its errors and an
// Interceptor's Request name it.
const OpDisableIPv6 = "disable ipv6"

// ipv6ConfDir holds the kernel's per-link IPv6 settings.
const ipv6ConfDir = "/proc/sys/net/ipv6/conf"

// DisableIPv6 turns IPv6 off on the link called name, in the connection's
// namespace (the link's net.ipv6.conf.NAME.disable_ipv6 setting). Done
// while the link is down, the link never gets an IPv6 address or route:
// each link with IPv6 adds three routes to the namespace's IPv6 table, and
// the kernel walks that whole table whenever a link goes down, so with
// thousands of links every link change pays for all of them.
//
// Netlink has no attribute for this setting; it is written through /proc,
// from a thread inside the connection's namespace. A kernel without IPv6
// is not an error.
func (c *Conn) DisableIPv6(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return opError(OpDisableIPv6, name, err)
	}
	if c.intercept != nil {
		if err := c.intercept(Request{Op: OpDisableIPv6, Link: name, Changes: true}); err != nil {
			return opError(OpDisableIPv6, name, err)
		}
	}
	if name == "" || filepath.Base(name) != name || name == "." || name == ".." {
		return errorf(OpDisableIPv6, name, "not an interface name")
	}
	write := func() error {
		err := os.WriteFile(filepath.Join(ipv6ConfDir, name, "disable_ipv6"), []byte("1"), 0)
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(ipv6ConfDir); errors.Is(serr, os.ErrNotExist) {
				return nil // no IPv6 in this kernel
			}
			return ErrNotFound // no such link
		}
		return err
	}
	var err error
	if c.ns != nil {
		err = c.ns.Do(write)
	} else {
		err = write()
	}
	return opError(OpDisableIPv6, name, err)
}
