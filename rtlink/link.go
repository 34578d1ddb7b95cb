package rtlink

import (
	"bytes"
	"context"
	"fmt"
	"net"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
)

// Link is a network interface as the kernel reports it, and the description
// of one to create.
//
// When creating, zero fields are not sent and keep the kernel's default;
// Index, OperUp and Kind (taken from Data) are ignored.
type Link struct {
	// Index is the interface index; set by the kernel.
	Index int
	// Name is the interface name, at most 15 bytes.
	Name string
	// Kind is the driver kind ("vxlan", "bridge", ...), empty for links that
	// report none, such as loopback or most physical NICs.
	Kind string
	// Up reports or requests the administrative IFF_UP flag.
	Up bool
	// OperUp reports that the link is operationally up (carrier present).
	OperUp bool
	// MTU in bytes.
	MTU int
	// HardwareAddr is the link-layer address.
	HardwareAddr net.HardwareAddr
	// TxQueueLen is the transmit queue length; 0 keeps the kernel default on
	// create (use [Conn.SetTxQueueLen] to set 0 explicitly).
	TxQueueLen int
	// MasterIndex is the index of the master device (a bridge), 0 for none.
	MasterIndex int
	// ParentIndex is IFLA_LINK: the lower device of a macvlan or vlan, the
	// peer of a veth. 0 for none.
	ParentIndex int
	// Alias is IFLA_IFALIAS, a free-form description. The kernel does not
	// take it on creation; CreateLink sets it right after.
	Alias string
	// Group is the link group (IFLA_GROUP); 0 is the default group.
	Group uint32
	// LinkNetNSID is IFLA_LINK_NETNSID: when set, ParentIndex and a
	// vxlan's underlay index (VXLAN.Link) are indexes in that other
	// namespace, named by its id as seen from this connection's namespace
	// (`ip netns list-id`), not here. nil means this namespace. On create it
	// makes the kernel look the lower device up, and open a vxlan's UDP
	// socket, in that namespace.
	LinkNetNSID *int32
	// NetNS, on create only, makes the link directly in that namespace
	// (IFLA_NET_NS_FD) while its lower device and a vxlan's UDP socket stay
	// in the connection's namespace. The kernel does not report it back:
	// read from the target namespace, such a link has LinkNetNSID set.
	NetNS *NetNS
	// Data holds the kind-specific attributes (IFLA_INFO_DATA). Its dynamic
	// type is one of *Bridge, *Dummy, *Veth, *Macvlan, *VLAN, *VXLAN, or nil for a
	// kind this package does not decode.
	Data LinkData
}

// LinkData is the kind-specific part of a link. It is implemented by
// [*Bridge], [*Dummy], [*Veth], [*Macvlan], [*VLAN] and [*VXLAN].
type LinkData interface {
	// Kind returns the kernel's name for the link kind (IFLA_INFO_KIND).
	Kind() string
	encode(ae *netlink.AttributeEncoder) error
	decode(ad *netlink.AttributeDecoder) error
}

// newLinkData returns an empty LinkData for kind, or nil when this package
// does not decode that kind.
func newLinkData(kind string) LinkData {
	switch kind {
	case "bridge":
		return &Bridge{}
	case "dummy":
		return &Dummy{}
	case "veth":
		return &Veth{}
	case "macvlan":
		return &Macvlan{}
	case "vlan":
		return &VLAN{}
	case "vxlan":
		return &VXLAN{}
	}
	return nil
}

// linkHeader marshals an ifinfomsg with the given index and flag change.
func linkHeader(index int, flags, change uint32) []byte {
	b, _ := (&rtnetlink.LinkMessage{Family: linuxabi.AF_UNSPEC, Index: uint32(index), Flags: flags, Change: change}).MarshalBinary()
	return b
}

// encodeLink returns the request body that creates l.
func encodeLink(l *Link) ([]byte, error) {
	var flags, change uint32
	if l.Up {
		flags, change = linuxabi.IFF_UP, linuxabi.IFF_UP
	}
	ae := netlink.NewAttributeEncoder()
	if err := encodeLinkAttrs(ae, l); err != nil {
		return nil, err
	}
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return append(linkHeader(0, flags, change), attrs...), nil
}

// encodeLinkAttrs writes the attributes of l that are set, in the order of
// their attribute numbers.
func encodeLinkAttrs(ae *netlink.AttributeEncoder, l *Link) error {
	if len(l.HardwareAddr) > 0 {
		ae.Bytes(linuxabi.IFLA_ADDRESS, l.HardwareAddr)
	}
	if l.Name != "" {
		ae.String(linuxabi.IFLA_IFNAME, l.Name)
	}
	if l.MTU != 0 {
		ae.Uint32(linuxabi.IFLA_MTU, uint32(l.MTU))
	}
	if l.ParentIndex != 0 {
		ae.Uint32(linuxabi.IFLA_LINK, uint32(l.ParentIndex))
	}
	if l.MasterIndex != 0 {
		ae.Uint32(linuxabi.IFLA_MASTER, uint32(l.MasterIndex))
	}
	if l.TxQueueLen != 0 {
		ae.Uint32(linuxabi.IFLA_TXQLEN, uint32(l.TxQueueLen))
	}
	if l.Data != nil {
		ae.Nested(linuxabi.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error {
			nae.String(linuxabi.IFLA_INFO_KIND, l.Data.Kind())
			nae.Nested(linuxabi.IFLA_INFO_DATA, l.Data.encode)
			return nil
		})
	}
	if l.NetNS != nil {
		ae.Uint32(linuxabi.IFLA_NET_NS_FD, uint32(l.NetNS.Fd()))
	}
	if l.Group != 0 {
		ae.Uint32(linuxabi.IFLA_GROUP, l.Group)
	}
	if l.LinkNetNSID != nil {
		ae.Int32(linuxabi.IFLA_LINK_NETNSID, *l.LinkNetNSID)
	}
	return nil
}

// decodeLink parses an RTM_NEWLINK message body.
func decodeLink(b []byte) (*Link, error) { return decodeLinkMessage(b, true) }

// decodeLinkMessage parses an RTM_NEWLINK message body; the kind-specific
// attributes (Data) only with kindData.
func decodeLinkMessage(b []byte, kindData bool) (*Link, error) {
	if len(b) < linuxabi.SizeofIfInfomsg {
		return nil, fmt.Errorf("link message of %d bytes is shorter than its header", len(b))
	}
	var hdr rtnetlink.LinkMessage
	if err := hdr.UnmarshalBinary(b[:linuxabi.SizeofIfInfomsg]); err != nil {
		return nil, err
	}
	l := &Link{Index: int(hdr.Index), Up: hdr.Flags&linuxabi.IFF_UP != 0}
	// A link message carries some thirty attributes, most of them (the
	// per-family settings in IFLA_AF_SPEC above all) of no use here. They
	// are walked in place rather than copied one by one, which takes about
	// a tenth off a listing of 8000 links.
	err := walkAttributes(b[linuxabi.SizeofIfInfomsg:], func(typ uint16, data []byte) error {
		var err error
		switch typ {
		case linuxabi.IFLA_ADDRESS:
			l.HardwareAddr = net.HardwareAddr(bytes.Clone(data))
		case linuxabi.IFLA_IFNAME:
			l.Name = nlenc.String(data)
		case linuxabi.IFLA_IFALIAS:
			l.Alias = nlenc.String(data)
		case linuxabi.IFLA_MTU:
			return attrInt(&l.MTU, typ, data)
		case linuxabi.IFLA_LINK:
			return attrInt(&l.ParentIndex, typ, data)
		case linuxabi.IFLA_MASTER:
			return attrInt(&l.MasterIndex, typ, data)
		case linuxabi.IFLA_TXQLEN:
			return attrInt(&l.TxQueueLen, typ, data)
		case linuxabi.IFLA_GROUP:
			l.Group, err = attrUint32(typ, data)
		case linuxabi.IFLA_LINK_NETNSID:
			var id uint32
			if id, err = attrUint32(typ, data); err == nil {
				l.LinkNetNSID = Ptr(int32(id))
			}
		case linuxabi.IFLA_OPERSTATE:
			if len(data) != 1 {
				return fmt.Errorf("attribute %d is not a uint8; length: %d", typ, len(data))
			}
			l.OperUp = data[0] == ifOperUp
		case linuxabi.IFLA_LINKINFO:
			return decodeLinkInfo(data, l, kindData)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("decode link %q: %w", l.Name, err)
	}
	return l, nil
}

func decodeLinkInfo(b []byte, l *Link, kindData bool) error {
	var data []byte
	err := walkAttributes(b, func(typ uint16, v []byte) error {
		switch typ {
		case linuxabi.IFLA_INFO_KIND:
			l.Kind = nlenc.String(v)
		case linuxabi.IFLA_INFO_DATA:
			data = v
		}
		return nil
	})
	if err != nil || !kindData {
		return err
	}
	l.Data = newLinkData(l.Kind)
	if l.Data == nil || data == nil {
		return nil
	}
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return err
	}
	if err := l.Data.decode(ad); err != nil {
		return err
	}
	return ad.Err()
}

// CreateLink creates l and returns the link as the kernel then reports it
// (nil when l.NetNS put it in another namespace). It fails with ErrExists
// when the name is taken, or when the driver refuses a duplicate (a vxlan
// with the VNI and port of another); it never modifies an existing link.
func (c *Conn) CreateLink(ctx context.Context, l *Link) (*Link, error) {
	const op = "create link"
	if l.Data == nil {
		return nil, errorf(op, l.Name, "no link kind given (Data is nil)")
	}
	body, err := encodeLink(l)
	if err != nil {
		return nil, opError(op, l.Name, err)
	}
	if _, err := c.execute(ctx, op, l.Name, linuxabi.RTM_NEWLINK, flagsCreate, body); err != nil {
		return nil, err
	}
	if l.NetNS != nil {
		return nil, nil // made in another namespace: not visible from here
	}
	// The kernel ignores IFLA_IFALIAS when creating a link; set it in a
	// second request and remove the link again if that fails, so a link is
	// never left without the alias its creator may use to recognise it.
	if l.Alias != "" {
		if err := c.SetAlias(ctx, l.Name, l.Alias); err != nil {
			_ = c.DeleteLink(context.WithoutCancel(ctx), l.Name)
			return nil, err
		}
	}
	return c.LinkByName(ctx, l.Name)
}

// ChangeLink changes the kind-specific attributes of the existing link with
// the given index in place (a changelink request): only the attributes set
// in data are sent, the others keep their values. A link whose kind is not
// data's is refused with an error matching ErrWrongKind before anything is
// sent. The kernel refuses attributes its driver cannot change on a live
// link with ErrNotSupported and says which in the error's Message; for vxlan
// see package vxlan's Client.Update for the ones it accepts.
func (c *Conn) ChangeLink(ctx context.Context, index int, data LinkData) error {
	const op = "change link"
	l, err := c.LinkByIndex(ctx, index)
	if err != nil {
		return err
	}
	if err := CheckKind(op, l, data.Kind()); err != nil {
		return err
	}
	ae := netlink.NewAttributeEncoder()
	ae.Nested(linuxabi.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error {
		nae.String(linuxabi.IFLA_INFO_KIND, data.Kind())
		nae.Nested(linuxabi.IFLA_INFO_DATA, data.encode)
		return nil
	})
	attrs, err := ae.Encode()
	if err != nil {
		return opError(op, l.Name, err)
	}
	_, err = c.execute(ctx, op, l.Name, linuxabi.RTM_NEWLINK, flagsChange, append(linkHeader(index, 0, 0), attrs...))
	return err
}

// LinkByName returns the link called name. The kernel looks the name up
// directly: the cost does not grow with the number of links.
func (c *Conn) LinkByName(ctx context.Context, name string) (*Link, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(linuxabi.IFLA_IFNAME, name)
	return c.getLink(ctx, name, 0, ae)
}

// LinkByIndex returns the link with the given index.
func (c *Conn) LinkByIndex(ctx context.Context, index int) (*Link, error) {
	return c.getLink(ctx, fmt.Sprintf("index %d", index), index, netlink.NewAttributeEncoder())
}

func (c *Conn) getLink(ctx context.Context, what string, index int, ae *netlink.AttributeEncoder) (*Link, error) {
	const op = "get link"
	ae.Uint32(linuxabi.IFLA_EXT_MASK, rtextFilterSkipStats)
	attrs, err := ae.Encode()
	if err != nil {
		return nil, opError(op, what, err)
	}
	msgs, err := c.execute(ctx, op, what, linuxabi.RTM_GETLINK, 0, append(linkHeader(index, 0, 0), attrs...))
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if m.Header.Type == linuxabi.RTM_NEWLINK {
			l, err := decodeLink(m.Data)
			return l, opError(op, what, err)
		}
	}
	return nil, &OpError{Op: op, Link: what, Err: linuxabi.ENODEV}
}

// Links lists the links of the namespace. A non-empty kind asks the kernel to
// return only links of that kind.
func (c *Conn) Links(ctx context.Context, kind string) ([]*Link, error) {
	return c.links(ctx, kind, true)
}

// BriefLinks lists the links of the namespace as Links does, without their
// kind-specific attributes: each Link has its Kind, but a nil Data. A
// listing of thousands of links that needs only names, kinds, flags,
// masters, groups and aliases costs 10 to 20 % less this way (see
// BenchmarkListLinks).
func (c *Conn) BriefLinks(ctx context.Context) ([]*Link, error) {
	return c.links(ctx, "", false)
}

func (c *Conn) links(ctx context.Context, kind string, kindData bool) ([]*Link, error) {
	const op = "list links"
	ae := kindFilter(kind)
	ae.Uint32(linuxabi.IFLA_EXT_MASK, rtextFilterSkipStats)
	attrs, err := ae.Encode()
	if err != nil {
		return nil, opError(op, kind, err)
	}
	return dump(ctx, c, op, kind, linuxabi.RTM_GETLINK, append(linkHeader(0, 0, 0), attrs...), func(b []byte) (*Link, bool, error) {
		l, err := decodeLinkMessage(b, kindData)
		return l, true, err
	})
}

// kindFilter starts the attributes of a link dump that asks the kernel for
// the links of kind only, or for every link when kind is empty.
func kindFilter(kind string) *netlink.AttributeEncoder {
	ae := netlink.NewAttributeEncoder()
	if kind != "" {
		ae.Nested(linuxabi.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error {
			nae.String(linuxabi.IFLA_INFO_KIND, kind)
			return nil
		})
	}
	return ae
}

// DeleteLink deletes the link called name. Deleting a link that does not
// exist fails with ErrNotFound.
func (c *Conn) DeleteLink(ctx context.Context, name string) error {
	ae := netlink.NewAttributeEncoder()
	ae.String(linuxabi.IFLA_IFNAME, name)
	attrs, _ := ae.Encode()
	_, err := c.execute(ctx, "delete link", name, linuxabi.RTM_DELLINK, flagsChange, append(linkHeader(0, 0, 0), attrs...))
	return err
}

// OpDeleteLinkGroup is the operation of DeleteLinkGroup, as its errors and
// an Interceptor's Request name it.
const OpDeleteLinkGroup = "delete link group"

// DeleteLinkGroup deletes every link in the link group in one request, which
// costs the kernel one RCU grace period for the whole group instead of one per
// link. Group 0, the default group, is refused.
func (c *Conn) DeleteLinkGroup(ctx context.Context, group uint32) error {
	const op = OpDeleteLinkGroup
	what := fmt.Sprintf("group %d", group)
	if group == 0 {
		return errorf(op, what, "refusing to delete the default link group 0")
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(linuxabi.IFLA_GROUP, group)
	attrs, _ := ae.Encode()
	_, err := c.execute(ctx, op, what, linuxabi.RTM_DELLINK, flagsChange, append(linkHeader(0, 0, 0), attrs...))
	return err
}

// setLink sends an RTM_NEWLINK change for the link called name, with the
// attributes written by fn and the given IFF flag change.
func (c *Conn) setLink(ctx context.Context, op, name string, flags, change uint32, fn func(ae *netlink.AttributeEncoder)) error {
	ae := netlink.NewAttributeEncoder()
	ae.String(linuxabi.IFLA_IFNAME, name)
	if fn != nil {
		fn(ae)
	}
	attrs, err := ae.Encode()
	if err != nil {
		return opError(op, name, err)
	}
	_, err = c.execute(ctx, op, name, linuxabi.RTM_NEWLINK, flagsChange, append(linkHeader(0, flags, change), attrs...))
	return err
}

// SetUp sets the link called name administratively up.
func (c *Conn) SetUp(ctx context.Context, name string) error {
	return c.setLink(ctx, "set up", name, linuxabi.IFF_UP, linuxabi.IFF_UP, nil)
}

// SetDown sets the link called name administratively down.
func (c *Conn) SetDown(ctx context.Context, name string) error {
	return c.setLink(ctx, "set down", name, 0, linuxabi.IFF_UP, nil)
}

// SetMTU sets the MTU of the link called name.
func (c *Conn) SetMTU(ctx context.Context, name string, mtu int) error {
	return c.setLink(ctx, "set mtu", name, 0, 0, func(ae *netlink.AttributeEncoder) { ae.Uint32(linuxabi.IFLA_MTU, uint32(mtu)) })
}

// SetHardwareAddr sets the link-layer address of the link called name.
func (c *Conn) SetHardwareAddr(ctx context.Context, name string, addr net.HardwareAddr) error {
	return c.setLink(ctx, "set address", name, 0, 0, func(ae *netlink.AttributeEncoder) { ae.Bytes(linuxabi.IFLA_ADDRESS, addr) })
}

// SetTxQueueLen sets the transmit queue length of the link called name.
func (c *Conn) SetTxQueueLen(ctx context.Context, name string, qlen int) error {
	return c.setLink(ctx, "set txqueuelen", name, 0, 0, func(ae *netlink.AttributeEncoder) { ae.Uint32(linuxabi.IFLA_TXQLEN, uint32(qlen)) })
}

// SetMaster enslaves the link called name to the master with the given
// index (a bridge); index 0 releases it, as [Conn.SetNoMaster] does.
func (c *Conn) SetMaster(ctx context.Context, name string, masterIndex int) error {
	return c.setLink(ctx, "set master", name, 0, 0, func(ae *netlink.AttributeEncoder) { ae.Uint32(linuxabi.IFLA_MASTER, uint32(masterIndex)) })
}

// SetNoMaster releases the link called name from its master.
func (c *Conn) SetNoMaster(ctx context.Context, name string) error {
	return c.SetMaster(ctx, name, 0)
}

// SetAlias sets IFLA_IFALIAS of the link called name; "" clears it.
func (c *Conn) SetAlias(ctx context.Context, name, alias string) error {
	return c.setLink(ctx, "set alias", name, 0, 0, func(ae *netlink.AttributeEncoder) { ae.String(linuxabi.IFLA_IFALIAS, alias) })
}

// Rename renames the link with the given index (the kernel requires the link
// to be down).
func (c *Conn) Rename(ctx context.Context, index int, newName string) error {
	ae := netlink.NewAttributeEncoder()
	ae.String(linuxabi.IFLA_IFNAME, newName)
	attrs, _ := ae.Encode()
	_, err := c.execute(ctx, "rename link", newName, linuxabi.RTM_NEWLINK, flagsChange, append(linkHeader(index, 0, 0), attrs...))
	return err
}

// SetLinkGroup puts the link called name into a link group (IFLA_GROUP).
func (c *Conn) SetLinkGroup(ctx context.Context, name string, group uint32) error {
	return c.setLink(ctx, "set group", name, 0, 0, func(ae *netlink.AttributeEncoder) { ae.Uint32(linuxabi.IFLA_GROUP, group) })
}

// SetNetNS moves the link called name into the namespace ns. The link
// disappears from this connection's namespace.
func (c *Conn) SetNetNS(ctx context.Context, name string, ns *NetNS) error {
	return c.setLink(ctx, "set netns", name, 0, 0, func(ae *netlink.AttributeEncoder) { ae.Uint32(linuxabi.IFLA_NET_NS_FD, uint32(ns.Fd())) })
}
