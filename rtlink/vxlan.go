package rtlink

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/mdlayher/netlink"
)

// IFLA_VXLAN attribute numbers newer than golang.org/x/sys knows, from the
// kernel's include/uapi/linux/if_link.h.
const (
	iflaVXLANReservedBits = 0x21 // IFLA_VXLAN_RESERVED_BITS, Linux 6.14
	iflaVXLANMCRoute      = 0x22 // IFLA_VXLAN_MC_ROUTE, Linux 6.15
)

// VXLAN holds the IFLA_VXLAN_* attributes of a vxlan link (kind "vxlan").
//
// It mirrors the wire exactly: a nil pointer is an attribute that is not sent
// (or that the kernel did not report), a false flag field is an NLA_FLAG
// attribute that is absent, and a zero address is not sent. The typed,
// validated view for applications is package vxlan's Config; this type is the
// encoding underneath it.
type VXLAN struct {
	ID    *uint32    // IFLA_VXLAN_ID: the VNI, below 2^24.
	Group netip.Addr // IFLA_VXLAN_GROUP or GROUP6: multicast group or unicast remote.
	Link  *uint32    // IFLA_VXLAN_LINK: ifindex of the underlay device.
	Local netip.Addr // IFLA_VXLAN_LOCAL or LOCAL6: source address.

	TTL      *uint8     // IFLA_VXLAN_TTL: 0 lets the route decide.
	TOS      *uint8     // IFLA_VXLAN_TOS: 1 inherits from the inner packet.
	Learning *bool      // IFLA_VXLAN_LEARNING (u8).
	Ageing   *uint32    // IFLA_VXLAN_AGEING: seconds; the kernel stores 0 as its default, 300.
	Limit    *uint32    // IFLA_VXLAN_LIMIT: maximum FDB entries, 0 = no limit.
	Ports    *PortRange // IFLA_VXLAN_PORT_RANGE: UDP source ports.
	Proxy    *bool      // IFLA_VXLAN_PROXY (u8).
	RSC      *bool      // IFLA_VXLAN_RSC (u8).
	L2Miss   *bool      // IFLA_VXLAN_L2MISS (u8).
	L3Miss   *bool      // IFLA_VXLAN_L3MISS (u8).
	Port     *uint16    // IFLA_VXLAN_PORT: UDP destination port, big-endian on the wire.

	UDPCSum          *bool // IFLA_VXLAN_UDP_CSUM (u8).
	UDPZeroCSum6TX   *bool // IFLA_VXLAN_UDP_ZERO_CSUM6_TX (u8).
	UDPZeroCSum6RX   *bool // IFLA_VXLAN_UDP_ZERO_CSUM6_RX (u8).
	RemCSumTX        *bool // IFLA_VXLAN_REMCSUM_TX (u8).
	RemCSumRX        *bool // IFLA_VXLAN_REMCSUM_RX (u8).
	GBP              bool  // IFLA_VXLAN_GBP (flag).
	RemCSumNoPartial bool  // IFLA_VXLAN_REMCSUM_NOPARTIAL (flag).
	CollectMetadata  *bool // IFLA_VXLAN_COLLECT_METADATA (u8).

	Label        *uint32  // IFLA_VXLAN_LABEL: IPv6 flow label, big-endian on the wire.
	GPE          bool     // IFLA_VXLAN_GPE (flag).
	TTLInherit   bool     // IFLA_VXLAN_TTL_INHERIT (flag).
	DF           *uint8   // IFLA_VXLAN_DF: 0 unset, 1 set, 2 inherit.
	VNIFilter    *bool    // IFLA_VXLAN_VNIFILTER (u8).
	LocalBypass  *bool    // IFLA_VXLAN_LOCALBYPASS (u8).
	LabelPolicy  *uint32  // IFLA_VXLAN_LABEL_POLICY: 0 fixed, 1 inherit.
	ReservedBits *[8]byte // IFLA_VXLAN_RESERVED_BITS: the VXLAN header bits to tolerate.
	MCRoute      *bool    // IFLA_VXLAN_MC_ROUTE (u8).
}

// PortRange is an inclusive range of UDP ports, in host byte order. The
// zero range means "unset": the kernel then picks source ports from the
// local port range. Package vxlan uses this type as vxlan.PortRange.
type PortRange struct {
	// Low is the first port of the range.
	Low uint16
	// High is the last port of the range, at least Low.
	High uint16
}

// IsZero reports whether the range is unset.
func (r PortRange) IsZero() bool { return r == PortRange{} }

// String returns "LOW-HIGH".
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Low, r.High) }

// MarshalText returns the range as "LOW-HIGH", so it reads as text in JSON.
func (r PortRange) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses "LOW-HIGH" (or a single port "P", meaning P-P).
func (r *PortRange) UnmarshalText(b []byte) error {
	lo, hi, found := strings.Cut(string(b), "-")
	if !found {
		hi = lo
	}
	l, err1 := strconv.ParseUint(lo, 10, 16)
	h, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || l > h {
		return &OpError{Op: "parse port range", Err: fmt.Errorf("%q: accepted LOW-HIGH with 0 <= LOW <= HIGH <= 65535: %w", b, ErrInvalid)}
	}
	*r = PortRange{Low: uint16(l), High: uint16(h)}
	return nil
}

// Kind returns "vxlan".
func (*VXLAN) Kind() string { return "vxlan" }

// vxAttrKind is the wire type of one IFLA_VXLAN attribute.
type vxAttrKind int

const (
	vxU8Bool vxAttrKind = iota
	vxU8
	vxU32
	vxBE16
	vxBE32
	vxFlag
	vxAddr4
	vxAddr6
	vxPortRange
	vxBytes8
)

// vxAttr ties an attribute number to its wire type and its field.
type vxAttr struct {
	typ  uint16
	kind vxAttrKind
	ptr  any
}

// attrs lists every attribute of v in attribute-number order, which is the
// order they are encoded in.
func (v *VXLAN) attrs() []vxAttr {
	return []vxAttr{
		{linuxabi.IFLA_VXLAN_ID, vxU32, &v.ID},
		{linuxabi.IFLA_VXLAN_GROUP, vxAddr4, &v.Group},
		{linuxabi.IFLA_VXLAN_LINK, vxU32, &v.Link},
		{linuxabi.IFLA_VXLAN_LOCAL, vxAddr4, &v.Local},
		{linuxabi.IFLA_VXLAN_TTL, vxU8, &v.TTL},
		{linuxabi.IFLA_VXLAN_TOS, vxU8, &v.TOS},
		{linuxabi.IFLA_VXLAN_LEARNING, vxU8Bool, &v.Learning},
		{linuxabi.IFLA_VXLAN_AGEING, vxU32, &v.Ageing},
		{linuxabi.IFLA_VXLAN_LIMIT, vxU32, &v.Limit},
		{linuxabi.IFLA_VXLAN_PORT_RANGE, vxPortRange, &v.Ports},
		{linuxabi.IFLA_VXLAN_PROXY, vxU8Bool, &v.Proxy},
		{linuxabi.IFLA_VXLAN_RSC, vxU8Bool, &v.RSC},
		{linuxabi.IFLA_VXLAN_L2MISS, vxU8Bool, &v.L2Miss},
		{linuxabi.IFLA_VXLAN_L3MISS, vxU8Bool, &v.L3Miss},
		{linuxabi.IFLA_VXLAN_PORT, vxBE16, &v.Port},
		{linuxabi.IFLA_VXLAN_GROUP6, vxAddr6, &v.Group},
		{linuxabi.IFLA_VXLAN_LOCAL6, vxAddr6, &v.Local},
		{linuxabi.IFLA_VXLAN_UDP_CSUM, vxU8Bool, &v.UDPCSum},
		{linuxabi.IFLA_VXLAN_UDP_ZERO_CSUM6_TX, vxU8Bool, &v.UDPZeroCSum6TX},
		{linuxabi.IFLA_VXLAN_UDP_ZERO_CSUM6_RX, vxU8Bool, &v.UDPZeroCSum6RX},
		{linuxabi.IFLA_VXLAN_REMCSUM_TX, vxU8Bool, &v.RemCSumTX},
		{linuxabi.IFLA_VXLAN_REMCSUM_RX, vxU8Bool, &v.RemCSumRX},
		{linuxabi.IFLA_VXLAN_GBP, vxFlag, &v.GBP},
		{linuxabi.IFLA_VXLAN_REMCSUM_NOPARTIAL, vxFlag, &v.RemCSumNoPartial},
		{linuxabi.IFLA_VXLAN_COLLECT_METADATA, vxU8Bool, &v.CollectMetadata},
		{linuxabi.IFLA_VXLAN_LABEL, vxBE32, &v.Label},
		{linuxabi.IFLA_VXLAN_GPE, vxFlag, &v.GPE},
		{linuxabi.IFLA_VXLAN_TTL_INHERIT, vxFlag, &v.TTLInherit},
		{linuxabi.IFLA_VXLAN_DF, vxU8, &v.DF},
		{linuxabi.IFLA_VXLAN_VNIFILTER, vxU8Bool, &v.VNIFilter},
		{linuxabi.IFLA_VXLAN_LOCALBYPASS, vxU8Bool, &v.LocalBypass},
		{linuxabi.IFLA_VXLAN_LABEL_POLICY, vxU32, &v.LabelPolicy},
		{iflaVXLANReservedBits, vxBytes8, &v.ReservedBits},
		{iflaVXLANMCRoute, vxU8Bool, &v.MCRoute},
	}
}

func (v *VXLAN) encode(ae *netlink.AttributeEncoder) error {
	for _, a := range v.attrs() {
		switch a.kind {
		case vxU8Bool:
			if p := *a.ptr.(**bool); p != nil {
				ae.Uint8(a.typ, boolToU8(*p))
			}
		case vxU8:
			if p := *a.ptr.(**uint8); p != nil {
				ae.Uint8(a.typ, *p)
			}
		case vxU32:
			if p := *a.ptr.(**uint32); p != nil {
				ae.Uint32(a.typ, *p)
			}
		case vxBE16:
			if p := *a.ptr.(**uint16); p != nil {
				ae.Bytes(a.typ, binary.BigEndian.AppendUint16(nil, *p))
			}
		case vxBE32:
			if p := *a.ptr.(**uint32); p != nil {
				ae.Bytes(a.typ, binary.BigEndian.AppendUint32(nil, *p))
			}
		case vxFlag:
			if *a.ptr.(*bool) {
				ae.Flag(a.typ, true)
			}
		case vxAddr4:
			if ip := *a.ptr.(*netip.Addr); ip.Is4() {
				b := ip.As4()
				ae.Bytes(a.typ, b[:])
			}
		case vxAddr6:
			if ip := *a.ptr.(*netip.Addr); ip.Is6() {
				b := ip.As16()
				ae.Bytes(a.typ, b[:])
			}
		case vxPortRange:
			if p := *a.ptr.(**PortRange); p != nil {
				b := binary.BigEndian.AppendUint16(nil, p.Low)
				ae.Bytes(a.typ, binary.BigEndian.AppendUint16(b, p.High))
			}
		case vxBytes8:
			if p := *a.ptr.(**[8]byte); p != nil {
				ae.Bytes(a.typ, p[:])
			}
		}
	}
	return nil
}

func (v *VXLAN) decode(ad *netlink.AttributeDecoder) error {
	byType := make(map[uint16]vxAttr, 34)
	for _, a := range v.attrs() {
		byType[a.typ] = a
	}
	for ad.Next() {
		a, ok := byType[ad.Type()]
		if !ok {
			continue // an attribute newer than this package
		}
		if err := decodeVXAttr(a, ad.Bytes()); err != nil {
			return fmt.Errorf("IFLA_VXLAN attribute %d: %w", a.typ, err)
		}
	}
	return nil
}

// vxAttrLen is the payload length each wire type must have; -1 for any.
var vxAttrLen = map[vxAttrKind]int{
	vxU8Bool: 1, vxU8: 1, vxU32: 4, vxBE16: 2, vxBE32: 4, vxFlag: 0,
	vxAddr4: 4, vxAddr6: 16, vxPortRange: 4, vxBytes8: 8,
}

func decodeVXAttr(a vxAttr, b []byte) error {
	// The kernel takes IFLA_VXLAN_TTL_INHERIT as an NLA_FLAG but reports it
	// as a u8 (0 or 1) in its dumps: accept both shapes for every flag.
	if a.kind == vxFlag && len(b) == 1 {
		*a.ptr.(*bool) = b[0] != 0
		return nil
	}
	if want := vxAttrLen[a.kind]; len(b) != want {
		return fmt.Errorf("payload of %d bytes, want %d", len(b), want)
	}
	switch a.kind {
	case vxU8Bool:
		*a.ptr.(**bool) = Ptr(b[0] != 0)
	case vxU8:
		*a.ptr.(**uint8) = Ptr(b[0])
	case vxU32:
		*a.ptr.(**uint32) = Ptr(binary.NativeEndian.Uint32(b))
	case vxBE16:
		*a.ptr.(**uint16) = Ptr(binary.BigEndian.Uint16(b))
	case vxBE32:
		*a.ptr.(**uint32) = Ptr(binary.BigEndian.Uint32(b))
	case vxFlag:
		*a.ptr.(*bool) = true
	case vxAddr4:
		*a.ptr.(*netip.Addr) = netip.AddrFrom4([4]byte(b))
	case vxAddr6:
		*a.ptr.(*netip.Addr) = netip.AddrFrom16([16]byte(b))
	case vxPortRange:
		*a.ptr.(**PortRange) = &PortRange{Low: binary.BigEndian.Uint16(b[:2]), High: binary.BigEndian.Uint16(b[2:])}
	case vxBytes8:
		*a.ptr.(**[8]byte) = Ptr([8]byte(b))
	}
	return nil
}

func boolToU8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Ptr returns a pointer to a copy of v, for the optional (pointer) fields
// of this package's types and of package vxlan's Config:
// Learning: rtlink.Ptr(false).
func Ptr[T any](v T) *T { return &v }
