package rtlink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

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
	if !isPathElement(name) {
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
	err := c.inNamespace(write)
	if errors.Is(err, linuxabi.EROFS) || errors.Is(err, linuxabi.EACCES) || errors.Is(err, linuxabi.EPERM) {
		return c.setAddrGenModeNone(ctx, OpDisableIPv6, name)
	}
	return opError(OpDisableIPv6, name, err)
}

// setAddrGenModeNone sets the link's IPv6 address generation mode to
// none (IFLA_AF_SPEC, AF_INET6, IFLA_INET6_ADDR_GEN_MODE), as operation op;
// the kernel takes it on a link that exists, not in the request that
// creates it.
func (c *Conn) setAddrGenModeNone(ctx context.Context, op, name string) error {
	return c.setLink(ctx, op, name, 0, 0, func(ae *netlink.AttributeEncoder) {
		ae.Nested(linuxabi.IFLA_AF_SPEC, func(spec *netlink.AttributeEncoder) error {
			spec.Nested(linuxabi.AF_INET6, func(in6 *netlink.AttributeEncoder) error {
				in6.Uint8(linuxabi.IFLA_INET6_ADDR_GEN_MODE, in6AddrGenModeNone)
				return nil
			})
			return nil
		})
	})
}

// OpSetIPv4Conf is the operation of SetIPv4Conf, as its errors and an
// Interceptor's Request name it.
const OpSetIPv4Conf = "set ipv4 conf"

// IPv4Setting is one of a link's IPv4 settings (net.ipv4.conf.NAME.*) that
// SetIPv4Conf sets.
type IPv4Setting uint16

// The settings SetIPv4Conf sets.
const (
	// IPv4ARPIgnore is arp_ignore: 1 answers ARP requests only for
	// addresses on the link the request came in on.
	IPv4ARPIgnore IPv4Setting = linuxabi.IPV4_DEVCONF_ARP_IGNORE
	// IPv4ARPAnnounce is arp_announce: 2 sends ARP requests with the
	// link's own best address as sender, whatever the packet's source.
	IPv4ARPAnnounce IPv4Setting = linuxabi.IPV4_DEVCONF_ARP_ANNOUNCE
)

// IPv4Conf is a value for one IPv4 setting of a link.
type IPv4Conf struct {
	Setting IPv4Setting
	Value   uint32
}

// SetIPv4Conf sets IPv4 settings of the link called name over netlink
// (IFLA_AF_SPEC, AF_INET, IFLA_INET_CONF), so that it works where
// /proc/sys is read-only, as in a Docker managed plugin. The kernel
// applies the larger of a link's value and the namespace's "all" value
// for both arp_ignore and arp_announce.
func (c *Conn) SetIPv4Conf(ctx context.Context, name string, conf ...IPv4Conf) error {
	return c.setLink(ctx, OpSetIPv4Conf, name, 0, 0, func(ae *netlink.AttributeEncoder) {
		ae.Nested(linuxabi.IFLA_AF_SPEC, func(spec *netlink.AttributeEncoder) error {
			spec.Nested(linuxabi.AF_INET, func(in *netlink.AttributeEncoder) error {
				in.Nested(linuxabi.IFLA_INET_CONF, func(cf *netlink.AttributeEncoder) error {
					for _, s := range conf {
						cf.Uint32(uint16(s.Setting), s.Value)
					}
					return nil
				})
				return nil
			})
			return nil
		})
	})
}

// OpSetIPv6AddrGenModeNone is the operation of SetIPv6AddrGenModeNone.
const OpSetIPv6AddrGenModeNone = "set ipv6 addrgenmode none"

// SetIPv6AddrGenModeNone keeps the link called name, IPv6 on, from making
// IPv6 addresses of its own (no link-local address): it then carries only
// the addresses given to it. The kernel takes it on a link that exists,
// before the link comes up.
func (c *Conn) SetIPv6AddrGenModeNone(ctx context.Context, name string) error {
	return c.setAddrGenModeNone(ctx, OpSetIPv6AddrGenModeNone, name)
}

// OpReadIPv4Conf is the operation of ReadIPv4Conf.
const OpReadIPv4Conf = "read ipv4 conf"

// ReadIPv4Conf reads the IPv4 setting key (such as "rp_filter") of the
// link called name, or of "all" or "default", in the connection's
// namespace: net.ipv4.conf.NAME.KEY, through /proc (readable also where
// it is read-only).
func (c *Conn) ReadIPv4Conf(ctx context.Context, name, key string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", opError(OpReadIPv4Conf, name, err)
	}
	if !isPathElement(name) || !isPathElement(key) {
		return "", errorf(OpReadIPv4Conf, name, "not a setting: %q/%q", name, key)
	}
	var v []byte
	read := func() (err error) {
		v, err = os.ReadFile(filepath.Join("/proc/sys/net/ipv4/conf", name, key))
		return err
	}
	err := c.inNamespace(read)
	if errors.Is(err, os.ErrNotExist) {
		err = ErrNotFound
	}
	if err != nil {
		return "", opError(OpReadIPv4Conf, name, err)
	}
	return strings.TrimSpace(string(v)), nil
}

// inNamespace runs fn, which reads or writes /proc/sys/net, from a thread
// inside the connection's namespace.
func (c *Conn) inNamespace(fn func() error) error {
	if c.ns != nil {
		return c.ns.Do(fn)
	}
	return fn()
}

// isPathElement reports whether s names one entry of a /proc/sys
// directory: not empty, no slash, not "." or "..".
func isPathElement(s string) bool {
	return s != "" && filepath.Base(s) == s && s != "." && s != ".."
}
