package rtlink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
)

// ErrNotBridgePort reports that a link is not a port of a bridge, so it has
// no bridge port flags to set or read. errors.Is matches it.
var ErrNotBridgePort = errors.New("not a bridge port")

// BridgePort holds the per-port flags of a Linux bridge port (the kernel's
// IFLA_BRPORT_* attributes, what `bridge link set dev X learning off` sets).
//
// A nil field is not sent when setting, so the kernel keeps what the port
// has; when reading back, every field the kernel reports is set. The names
// in parentheses are the keywords of iproute2's `bridge link set`.
type BridgePort struct {
	// Hairpin sends frames back out of the port they came in on
	// (hairpin, IFLA_BRPORT_MODE).
	Hairpin *bool
	// Guard blocks the port when it receives a BPDU (guard, IFLA_BRPORT_GUARD).
	Guard *bool
	// RootBlock keeps the port from becoming the STP root port
	// (root_block, IFLA_BRPORT_PROTECT).
	RootBlock *bool
	// FastLeave removes a multicast group from the port on the first IGMP/MLD
	// leave (fastleave, IFLA_BRPORT_FAST_LEAVE).
	FastLeave *bool
	// Learning learns the source MAC addresses of frames received on the
	// port into the bridge FDB (learning, IFLA_BRPORT_LEARNING).
	Learning *bool
	// UnicastFlood floods unicast frames to unknown destinations out of
	// the port (flood, IFLA_BRPORT_UNICAST_FLOOD).
	UnicastFlood *bool
	// ProxyARP answers ARP requests for known neighbours instead of
	// forwarding them out of the port (IFLA_BRPORT_PROXYARP; iproute2 sets
	// it with `ip link set dev X type bridge_slave proxy_arp on`).
	ProxyARP *bool
	// ProxyARPWiFi is the 802.11 variant of ProxyARP
	// (IFLA_BRPORT_PROXYARP_WIFI, `proxy_arp_wifi`).
	ProxyARPWiFi *bool
	// MulticastFlood floods multicast frames to unknown groups out of the
	// port (mcast_flood, IFLA_BRPORT_MCAST_FLOOD).
	MulticastFlood *bool
	// MulticastToUnicast sends multicast out of the port as unicast copies
	// (mcast_to_unicast, IFLA_BRPORT_MCAST_TO_UCAST).
	MulticastToUnicast *bool
	// BroadcastFlood floods broadcast frames out of the port
	// (bcast_flood, IFLA_BRPORT_BCAST_FLOOD).
	BroadcastFlood *bool
	// NeighSuppress answers ARP requests and IPv6 neighbour solicitations
	// from the bridge's neighbour entries instead of flooding them out of
	// the port (neigh_suppress, IFLA_BRPORT_NEIGH_SUPPRESS); BGP EVPN
	// wants it on the vxlan port.
	NeighSuppress *bool
	// Isolated keeps the port from forwarding to other isolated ports
	// (isolated, IFLA_BRPORT_ISOLATED).
	Isolated *bool
}

// bridgePortFlags lists the flags of BridgePort with their attribute
// numbers, in attribute-number order: the encoder writes them in this order
// and the decoder looks them up here, so each flag is described once.
var bridgePortFlags = []struct {
	typ   uint16
	field func(*BridgePort) **bool
}{
	{linuxabi.IFLA_BRPORT_MODE, func(p *BridgePort) **bool { return &p.Hairpin }},
	{linuxabi.IFLA_BRPORT_GUARD, func(p *BridgePort) **bool { return &p.Guard }},
	{linuxabi.IFLA_BRPORT_PROTECT, func(p *BridgePort) **bool { return &p.RootBlock }},
	{linuxabi.IFLA_BRPORT_FAST_LEAVE, func(p *BridgePort) **bool { return &p.FastLeave }},
	{linuxabi.IFLA_BRPORT_LEARNING, func(p *BridgePort) **bool { return &p.Learning }},
	{linuxabi.IFLA_BRPORT_UNICAST_FLOOD, func(p *BridgePort) **bool { return &p.UnicastFlood }},
	{linuxabi.IFLA_BRPORT_PROXYARP, func(p *BridgePort) **bool { return &p.ProxyARP }},
	{linuxabi.IFLA_BRPORT_PROXYARP_WIFI, func(p *BridgePort) **bool { return &p.ProxyARPWiFi }},
	{linuxabi.IFLA_BRPORT_MCAST_FLOOD, func(p *BridgePort) **bool { return &p.MulticastFlood }},
	{linuxabi.IFLA_BRPORT_MCAST_TO_UCAST, func(p *BridgePort) **bool { return &p.MulticastToUnicast }},
	{linuxabi.IFLA_BRPORT_BCAST_FLOOD, func(p *BridgePort) **bool { return &p.BroadcastFlood }},
	{linuxabi.IFLA_BRPORT_NEIGH_SUPPRESS, func(p *BridgePort) **bool { return &p.NeighSuppress }},
	{linuxabi.IFLA_BRPORT_ISOLATED, func(p *BridgePort) **bool { return &p.Isolated }},
}

// encode writes the flags of p that are set, as one-byte attributes (1 on,
// 0 off).
func (p *BridgePort) encode(ae *netlink.AttributeEncoder) error {
	for _, f := range bridgePortFlags {
		if v := *f.field(p); v != nil {
			var b uint8
			if *v {
				b = 1
			}
			ae.Uint8(f.typ, b)
		}
	}
	return nil
}

// decode reads the flags of p from IFLA_BRPORT_* attributes, ignoring the
// others (timers, STP identifiers, counters).
func (p *BridgePort) decode(ad *netlink.AttributeDecoder) error {
	for ad.Next() {
		for _, f := range bridgePortFlags {
			if ad.Type() == f.typ {
				v := ad.Uint8() != 0
				*f.field(p) = &v
				break
			}
		}
	}
	return nil
}

// encodeBridgePortSet returns the body of the RTM_SETLINK request that sets
// the flags p holds on the port with the given index: an AF_BRIDGE ifinfomsg
// and IFLA_PROTINFO, flagged NLA_F_NESTED, around the IFLA_BRPORT_*
// attributes. This is the form iproute2's `bridge link set` sends. The
// kernel hands AF_BRIDGE RTM_SETLINK to the port's master (the bridge); an
// IFLA_PROTINFO without NLA_F_NESTED would be read as the old single-byte
// STP port state instead.
func encodeBridgePortSet(index int, p *BridgePort) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(linuxabi.IFLA_PROTINFO, p.encode)
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return append(bridgeLinkHeader(index), attrs...), nil
}

// bridgeLinkHeader marshals an ifinfomsg of the AF_BRIDGE family for the
// link with the given index (0 in a dump request). It is written by hand:
// rtnetlink.LinkMessage always marshals the family as AF_UNSPEC.
func bridgeLinkHeader(index int) []byte {
	b := make([]byte, linuxabi.SizeofIfInfomsg)
	b[0] = linuxabi.AF_BRIDGE
	binary.NativeEndian.PutUint32(b[4:8], uint32(index))
	return b
}

// SetBridgePort sets the flags p holds on the bridge port called name; nil
// fields are left as they are. A link that is not enslaved to a master fails
// with ErrNotBridgePort and nothing is sent; a master that is not a bridge
// is refused by the kernel (EOPNOTSUPP).
func (c *Conn) SetBridgePort(ctx context.Context, name string, p *BridgePort) error {
	const op = "set bridge port"
	if p == nil {
		return errorf(op, name, "no flags given (BridgePort is nil)")
	}
	l, err := c.LinkByName(ctx, name)
	if err != nil {
		return err
	}
	if l.MasterIndex == 0 {
		return &OpError{Op: op, Link: name, Err: ErrNotBridgePort}
	}
	body, err := encodeBridgePortSet(l.Index, p)
	if err != nil {
		return opError(op, name, err)
	}
	_, err = c.execute(ctx, op, name, linuxabi.RTM_SETLINK, flagsChange, body)
	return err
}

// BridgePort returns the flags of the bridge port called name, in one
// request whose cost does not grow with the number of links: the kernel
// reports a port's flags in IFLA_LINKINFO, under IFLA_INFO_SLAVE_KIND
// "bridge" and IFLA_INFO_SLAVE_DATA. A link that is not a bridge port fails
// with ErrNotBridgePort.
func (c *Conn) BridgePort(ctx context.Context, name string) (*BridgePort, error) {
	const op = "get bridge port"
	ae := netlink.NewAttributeEncoder()
	ae.String(linuxabi.IFLA_IFNAME, name)
	ae.Uint32(linuxabi.IFLA_EXT_MASK, rtextFilterSkipStats)
	attrs, err := ae.Encode()
	if err != nil {
		return nil, opError(op, name, err)
	}
	msgs, err := c.execute(ctx, op, name, linuxabi.RTM_GETLINK, 0, append(linkHeader(0, 0, 0), attrs...))
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if m.Header.Type != linuxabi.RTM_NEWLINK {
			continue
		}
		p, err := decodeSlaveBridgePort(m.Data)
		if err != nil {
			return nil, opError(op, name, err)
		}
		if p == nil {
			return nil, &OpError{Op: op, Link: name, Err: ErrNotBridgePort}
		}
		return p, nil
	}
	return nil, &OpError{Op: op, Link: name, Err: linuxabi.ENODEV}
}

// decodeSlaveBridgePort returns the bridge port flags of an RTM_NEWLINK
// message body of the AF_UNSPEC family, or nil when the link is not a
// bridge port.
func decodeSlaveBridgePort(b []byte) (*BridgePort, error) {
	ad, err := linkAttrs(b)
	if err != nil {
		return nil, err
	}
	var port *BridgePort
	for ad.Next() {
		if ad.Type() != linuxabi.IFLA_LINKINFO {
			continue
		}
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			var kind string
			var data []byte
			for nad.Next() {
				switch nad.Type() {
				case linuxabi.IFLA_INFO_SLAVE_KIND:
					kind = nad.String()
				case linuxabi.IFLA_INFO_SLAVE_DATA:
					data = nad.Bytes()
				}
			}
			if kind != "bridge" || data == nil {
				return nad.Err()
			}
			port = &BridgePort{}
			return decodeBridgePortAttrs(data, port)
		})
	}
	if err := ad.Err(); err != nil {
		return nil, err
	}
	return port, nil
}

// BridgePortLink is one bridge port as the kernel lists it in an AF_BRIDGE
// link dump.
type BridgePortLink struct {
	// Index and Name identify the port.
	Index int
	Name  string
	// MasterIndex is the index of the bridge the link is a port of.
	MasterIndex int
	// Port holds the port's flags.
	Port BridgePort
}

// BridgePorts lists every bridge port of the namespace with its flags, from
// an AF_BRIDGE RTM_GETLINK dump (what `bridge link show` reads): the kernel
// answers it only as a dump, one message per port, each with the flags in
// IFLA_PROTINFO. Links that are not bridge ports are left out.
func (c *Conn) BridgePorts(ctx context.Context) ([]*BridgePortLink, error) {
	const op = "list bridge ports"
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(linuxabi.IFLA_EXT_MASK, rtextFilterSkipStats)
	attrs, err := ae.Encode()
	if err != nil {
		return nil, opError(op, "", err)
	}
	return dump(ctx, c, op, "", linuxabi.RTM_GETLINK, append(bridgeLinkHeader(0), attrs...), func(b []byte) (*BridgePortLink, bool, error) {
		pl, err := decodeBridgePortLink(b)
		return pl, pl != nil, err
	})
}

// decodeBridgePortLink parses one message of an AF_BRIDGE link dump; it
// returns nil for a message without IFLA_PROTINFO (a bridge itself, which
// the kernel lists when asked for VLAN information).
func decodeBridgePortLink(b []byte) (*BridgePortLink, error) {
	ad, err := linkAttrs(b)
	if err != nil {
		return nil, err
	}
	var hdr rtnetlink.LinkMessage
	_ = hdr.UnmarshalBinary(b[:linuxabi.SizeofIfInfomsg]) // length checked by linkAttrs
	pl := &BridgePortLink{Index: int(hdr.Index)}
	seen := false
	for ad.Next() {
		switch ad.Type() {
		case linuxabi.IFLA_IFNAME:
			pl.Name = ad.String()
		case linuxabi.IFLA_MASTER:
			pl.MasterIndex = int(ad.Uint32())
		case linuxabi.IFLA_PROTINFO:
			seen = true
			ad.Do(func(data []byte) error { return decodeBridgePortAttrs(data, &pl.Port) })
		}
	}
	if err := ad.Err(); err != nil {
		return nil, fmt.Errorf("decode bridge port %q: %w", pl.Name, err)
	}
	if !seen {
		return nil, nil
	}
	return pl, nil
}

// linkAttrs returns a decoder over the attributes of an ifinfomsg body.
func linkAttrs(b []byte) (*netlink.AttributeDecoder, error) {
	if len(b) < linuxabi.SizeofIfInfomsg {
		return nil, fmt.Errorf("link message of %d bytes is shorter than its header", len(b))
	}
	return netlink.NewAttributeDecoder(b[linuxabi.SizeofIfInfomsg:])
}

// decodeBridgePortAttrs decodes the IFLA_BRPORT_* attributes in data into p.
func decodeBridgePortAttrs(data []byte, p *BridgePort) error {
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return err
	}
	if err := p.decode(ad); err != nil {
		return err
	}
	return ad.Err()
}
