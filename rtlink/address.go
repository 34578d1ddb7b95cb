package rtlink

import (
	"context"
	"net"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
)

// Address is an IP address with its prefix length, assigned to a link.
type Address struct {
	// LinkIndex is the index of the link the address is on.
	LinkIndex int
	// Prefix is the address and its prefix length, e.g. 198.18.0.1/24.
	Prefix netip.Prefix
}

func addressMessage(index int, p netip.Prefix) *rtnetlink.AddressMessage {
	ip := net.IP(p.Addr().AsSlice())
	m := &rtnetlink.AddressMessage{
		Family:       family(p.Addr()),
		PrefixLength: uint8(p.Bits()),
		Scope:        linuxabi.RT_SCOPE_UNIVERSE,
		Index:        uint32(index),
		Attributes:   &rtnetlink.AddressAttributes{Address: ip},
	}
	if p.Addr().Is4() {
		m.Attributes.Local = ip
	} else {
		// The address is managed by its owner, not autoconfigured: skip
		// duplicate address detection so it is usable at once.
		m.Attributes.Flags = linuxabi.IFA_F_NODAD
	}
	return m
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return linuxabi.AF_INET
	}
	return linuxabi.AF_INET6
}

// AddAddress assigns prefix (for example 198.18.0.1/24) to the link. IPv6
// addresses are added without duplicate address detection.
func (c *Conn) AddAddress(ctx context.Context, l *Link, prefix netip.Prefix) error {
	return c.changeAddress(ctx, "add address", linuxabi.RTM_NEWADDR, flagsCreate, l, prefix)
}

// DeleteAddress removes prefix from the link.
func (c *Conn) DeleteAddress(ctx context.Context, l *Link, prefix netip.Prefix) error {
	return c.changeAddress(ctx, "delete address", linuxabi.RTM_DELADDR, flagsChange, l, prefix)
}

func (c *Conn) changeAddress(ctx context.Context, op string, typ netlink.HeaderType, flags netlink.HeaderFlags, l *Link, prefix netip.Prefix) error {
	what := l.Name + " " + prefix.String()
	if !prefix.IsValid() {
		return errorf(op, what, "invalid prefix")
	}
	b, err := addressMessage(l.Index, prefix).MarshalBinary()
	if err != nil {
		return opError(op, what, err)
	}
	_, err = c.execute(ctx, op, what, typ, flags, b)
	return err
}

// Addresses lists the addresses of the link, or of every link when l is nil.
func (c *Conn) Addresses(ctx context.Context, l *Link) ([]Address, error) {
	const op = "list addresses"
	what, index := "", 0
	if l != nil {
		what, index = l.Name, l.Index
	}
	b, _ := (&rtnetlink.AddressMessage{Index: uint32(index)}).MarshalBinary()
	return dump(ctx, c, op, what, linuxabi.RTM_GETADDR, b, func(b []byte) (Address, bool, error) {
		var am rtnetlink.AddressMessage
		if err := am.UnmarshalBinary(b); err != nil {
			return Address{}, false, err
		}
		if (index != 0 && int(am.Index) != index) || am.Attributes == nil {
			return Address{}, false, nil
		}
		ip, ok := netip.AddrFromSlice(am.Attributes.Address)
		return Address{LinkIndex: int(am.Index), Prefix: netip.PrefixFrom(ip.Unmap(), int(am.PrefixLength))}, ok, nil
	})
}
