package rtlink

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/netfault"
	"github.com/mdlayher/netlink"
)

// OpDisableIPv6 is the operation of DisableIPv6, as its errors and an
// Interceptor's Request name it.
const OpDisableIPv6 = "disable ipv6"

// ipv6ConfDir holds the kernel's per-link IPv6 settings.
const ipv6ConfDir = "/proc/sys/net/ipv6/conf"

// in6AddrGenModeNone is IN6_ADDR_GEN_MODE_NONE (linux/if_link.h): the link
// makes no IPv6 address of its own.
const in6AddrGenModeNone = 1

// writeFile writes a sysctl; tests replace it to reach the read-only case.
var writeFile = os.WriteFile

// DisableIPv6 turns IPv6 off on the link called name, in the connection's
// namespace (the link's net.ipv6.conf.NAME.disable_ipv6 setting). Done
// while the link is down, the link never gets an IPv6 address or route:
// each link with IPv6 adds three routes to the namespace's IPv6 table, and
// the kernel walks that whole table whenever a link goes down, so with
// thousands of links every link change pays for all of them.
//
// Netlink has no attribute for this setting; it is written through /proc,
// from a thread inside the connection's namespace. Where /proc/sys is
// read-only (inside a container, such as a Docker managed plugin), the
// link's IPv6 address generation is set to none over netlink instead: the
// link then makes no address and no link-local route, and keeps only its
// multicast route. A kernel without IPv6 is not an error.
func (c *Conn) DisableIPv6(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return opError(OpDisableIPv6, name, err)
	}
	if c.intercept != nil {
		if err := c.intercept(netfault.Request{Op: OpDisableIPv6, Link: name, Changes: true}); err != nil {
			return opError(OpDisableIPv6, name, err)
		}
	}
	if name == "" || filepath.Base(name) != name || name == "." || name == ".." {
		return errorf(OpDisableIPv6, name, "not an interface name")
	}
	write := func() error {
		err := writeFile(filepath.Join(ipv6ConfDir, name, "disable_ipv6"), []byte("1"), 0)
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
	if errors.Is(err, linuxabi.EROFS) || errors.Is(err, linuxabi.EACCES) || errors.Is(err, linuxabi.EPERM) {
		return c.setIPv6AddrGenModeNone(ctx, name)
	}
	return opError(OpDisableIPv6, name, err)
}

// setIPv6AddrGenModeNone sets the link's IPv6 address generation mode to
// none (IFLA_AF_SPEC, AF_INET6, IFLA_INET6_ADDR_GEN_MODE), which the kernel
// takes on a link that exists, not in the request that creates it.
func (c *Conn) setIPv6AddrGenModeNone(ctx context.Context, name string) error {
	return c.setLink(ctx, OpDisableIPv6, name, 0, 0, func(ae *netlink.AttributeEncoder) {
		ae.Nested(linuxabi.IFLA_AF_SPEC, func(spec *netlink.AttributeEncoder) error {
			spec.Nested(linuxabi.AF_INET6, func(in6 *netlink.AttributeEncoder) error {
				in6.Uint8(linuxabi.IFLA_INET6_ADDR_GEN_MODE, in6AddrGenModeNone)
				return nil
			})
			return nil
		})
	})
}
