package rtlink

import (
	"context"
	"net"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
)

// Route is a unicast route in the main table.
type Route struct {
	// Dst is the destination; the zero Prefix means the default route, whose
	// family is then the Gateway's.
	Dst netip.Prefix
	// Gateway is the next hop; the zero Addr means the destination is on-link.
	Gateway netip.Addr
	// LinkIndex is the outgoing interface; 0 lets the kernel pick from Gateway.
	LinkIndex int
	// Priority is the route metric.
	Priority uint32
}

// IsDefault reports whether r is a default route.
func (r Route) IsDefault() bool { return !r.Dst.IsValid() || r.Dst.Bits() == 0 }

// String returns the route as iproute2 prints it, e.g. "default via GW".
func (r Route) String() string {
	s := "default"
	if !r.IsDefault() {
		s = r.Dst.String()
	}
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	return s
}

func (r Route) message() (*rtnetlink.RouteMessage, error) {
	fam := r.Gateway
	if r.Dst.IsValid() {
		fam = r.Dst.Addr()
	}
	if !fam.IsValid() {
		return nil, errorf("route", r.String(), "neither a destination nor a gateway given")
	}
	m := &rtnetlink.RouteMessage{
		Family:   family(fam),
		Table:    linuxabi.RT_TABLE_MAIN,
		Protocol: linuxabi.RTPROT_BOOT,
		Scope:    linuxabi.RT_SCOPE_UNIVERSE,
		Type:     linuxabi.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{
			OutIface: uint32(r.LinkIndex),
			Priority: r.Priority,
		},
	}
	if !r.IsDefault() {
		m.DstLength = uint8(r.Dst.Bits())
		m.Attributes.Dst = net.IP(r.Dst.Masked().Addr().AsSlice())
	}
	if r.Gateway.IsValid() {
		m.Attributes.Gateway = net.IP(r.Gateway.AsSlice())
	} else {
		m.Scope = linuxabi.RT_SCOPE_LINK
	}
	return m, nil
}

// AddRoute adds r; it fails with ErrExists if an equal route exists.
func (c *Conn) AddRoute(ctx context.Context, r Route) error {
	return c.changeRoute(ctx, "add route", linuxabi.RTM_NEWROUTE, flagsCreate, r)
}

// DeleteRoute deletes r.
func (c *Conn) DeleteRoute(ctx context.Context, r Route) error {
	return c.changeRoute(ctx, "delete route", linuxabi.RTM_DELROUTE, flagsChange, r)
}

func (c *Conn) changeRoute(ctx context.Context, op string, typ netlink.HeaderType, flags netlink.HeaderFlags, r Route) error {
	m, err := r.message()
	if err != nil {
		return err
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return opError(op, r.String(), err)
	}
	_, err = c.execute(ctx, op, r.String(), typ, flags, b)
	return err
}

// Routes lists the unicast routes of the main table for the family of
// sample (any IPv4 or IPv6 address, such as netip.IPv4Unspecified()).
func (c *Conn) Routes(ctx context.Context, sample netip.Addr) ([]Route, error) {
	const op = "list routes"
	b, err := (&rtnetlink.RouteMessage{Family: family(sample)}).MarshalBinary()
	if err != nil {
		return nil, opError(op, "", err)
	}
	return dump(ctx, c, op, "", linuxabi.RTM_GETROUTE, b, func(b []byte) (Route, bool, error) {
		var rm rtnetlink.RouteMessage
		if err := rm.UnmarshalBinary(b); err != nil {
			return Route{}, false, err
		}
		table := uint32(rm.Table)
		if rm.Attributes.Table != 0 {
			table = rm.Attributes.Table
		}
		if table != linuxabi.RT_TABLE_MAIN || rm.Type != linuxabi.RTN_UNICAST {
			return Route{}, false, nil
		}
		r := Route{LinkIndex: int(rm.Attributes.OutIface), Priority: rm.Attributes.Priority}
		if dst, ok := netip.AddrFromSlice(rm.Attributes.Dst); ok {
			r.Dst = netip.PrefixFrom(dst.Unmap(), int(rm.DstLength))
		}
		if gw, ok := netip.AddrFromSlice(rm.Attributes.Gateway); ok {
			r.Gateway = gw.Unmap()
		}
		return r, true, nil
	})
}
