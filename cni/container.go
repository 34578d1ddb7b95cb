package cni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// errNoNetns says that a container's network namespace no longer exists.
var errNoNetns = errors.New("network namespace does not exist")

// container is a container's network namespace with a netlink connection
// into it: the plugin's thread never enters the namespace.
type container struct {
	path string
	ns   *rtlink.NetNS
	conn *rtlink.Conn
}

// openContainer opens the namespace at path (CNI_NETNS); an error matching
// errNoNetns when it is gone.
func openContainer(path string) (*container, error) {
	if path == "" {
		return nil, fmt.Errorf("no network namespace given (CNI_NETNS): %w", errNoNetns)
	}
	h, err := rtlink.OpenNetNS(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container namespace %s: %w", path, errNoNetns)
	}
	if err != nil {
		return nil, fmt.Errorf("container namespace %s: %w", path, err)
	}
	conn, err := rtlink.Dial(rtlink.WithNetNS(h))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("container namespace %s: %w", path, err)
	}
	return &container{path: path, ns: h, conn: conn}, nil
}

func (c *container) close() {
	c.conn.Close()
	c.ns.Close()
}

// configure brings the container's interface up and gives it the IPAM
// result's addresses and routes. On error it deletes the interface.
func (c *container) configure(ctx context.Context, ifName string, r *current.Result) (err error) {
	l, err := c.conn.LinkByName(ctx, ifName)
	if err != nil {
		return fmt.Errorf("container interface %s: %w", ifName, err)
	}
	defer func() {
		if err != nil {
			_ = c.conn.DeleteLink(context.WithoutCancel(ctx), ifName)
		}
	}()
	if err := c.conn.SetUp(ctx, ifName); err != nil {
		return err
	}
	for _, ip := range r.IPs {
		p, ok := prefixOf(ip.Address)
		if !ok {
			continue
		}
		if err := c.conn.AddAddress(ctx, l, p); err != nil && !errors.Is(err, rtlink.ErrExists) {
			return fmt.Errorf("address %s on %s: %w", p, ifName, err)
		}
	}
	for _, rt := range routesOf(r, l.Index) {
		if err := c.conn.AddRoute(ctx, rt); err != nil && !errors.Is(err, rtlink.ErrExists) {
			return fmt.Errorf("route %s on %s: %w", rt, ifName, err)
		}
	}
	return nil
}

// routesOf returns the result's routes through the interface with the
// given index; a route without a gateway goes through the gateway of the
// result's address of its family, as CNI's reference plugins do.
func routesOf(r *current.Result, index int) []rtlink.Route {
	var out []rtlink.Route
	for _, rt := range r.Routes {
		dst, ok := prefixOf(rt.Dst)
		if !ok {
			continue
		}
		gw, _ := netip.AddrFromSlice(rt.GW)
		gw = gw.Unmap()
		if !gw.IsValid() {
			for _, ip := range r.IPs {
				if a, ok := netip.AddrFromSlice(ip.Gateway); ok && a.Unmap().Is4() == dst.Addr().Is4() {
					gw = a.Unmap()
					break
				}
			}
		}
		out = append(out, rtlink.Route{Dst: dst.Masked(), Gateway: gw, LinkIndex: index, Priority: uint32(rt.Priority)})
	}
	return out
}

// check reports whether the container's interface is up, of its kind and
// MTU, and has the addresses and routes of the previous result.
func (c *container) check(ctx context.Context, ifName, kind string, mtu int, prev *current.Result) error {
	l, err := c.conn.LinkByName(ctx, ifName)
	if err != nil {
		return fmt.Errorf("container interface %s in %s: %w", ifName, c.path, err)
	}
	switch {
	case l.Kind != kind:
		return fmt.Errorf("container interface %s is a %q link, not %s: %w", ifName, l.Kind, kind, rtlink.ErrWrongKind)
	case !l.Up:
		return fmt.Errorf("container interface %s is down", ifName)
	case l.MTU != mtu:
		return fmt.Errorf("container interface %s has MTU %d, not the network's %d", ifName, l.MTU, mtu)
	}
	addrs, err := c.conn.Addresses(ctx, l)
	if err != nil {
		return err
	}
	for _, ip := range prev.IPs {
		p, ok := prefixOf(ip.Address)
		if !ok {
			continue
		}
		found := false
		for _, a := range addrs {
			found = found || a.Prefix == p
		}
		if !found {
			return fmt.Errorf("container interface %s: address %s is missing", ifName, p)
		}
	}
	for _, want := range routesOf(prev, l.Index) {
		have, err := c.conn.Routes(ctx, want.Dst.Addr())
		if err != nil {
			return err
		}
		found := false
		for _, h := range have {
			sameDst := h.Dst == want.Dst || (h.IsDefault() && want.IsDefault())
			found = found || (sameDst && h.Gateway == want.Gateway && h.LinkIndex == l.Index)
		}
		if !found {
			return fmt.Errorf("container interface %s: route %s is missing", ifName, want)
		}
	}
	return nil
}

// deleteLink deletes the named link of the namespace if it is of kind; a
// missing link, or one of another kind (not this plugin's), is left.
func (c *container) deleteLink(ctx context.Context, name, kind string) error {
	l, err := c.conn.LinkByName(ctx, name)
	if errors.Is(err, rtlink.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Kind != kind {
		return nil
	}
	if err := c.conn.DeleteLink(ctx, name); err != nil && !errors.Is(err, rtlink.ErrNotFound) {
		return fmt.Errorf("container interface %s in %s: %w", name, c.path, err)
	}
	return nil
}

// containerKind is the link kind of the containers' interfaces.
func containerKind(spec *fabric.NetworkSpec) string {
	if spec.Kind == fabric.KindMacvlan {
		return "macvlan"
	}
	return "veth"
}
