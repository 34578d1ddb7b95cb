package rtlink

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/mdlayher/netlink"
)

// Constants of the kernel's uapi headers that golang.org/x/sys lacks.
const (
	vethInfoPeer         = 1      // VETH_INFO_PEER, linux/veth.h
	ifOperUp             = 6      // IF_OPER_UP, linux/if.h
	rtextFilterSkipStats = 1 << 3 // RTEXT_FILTER_SKIP_STATS, linux/rtnetlink.h
)

// Bridge is a Linux bridge (kind "bridge"). It has no attributes this
// package sets; its ports are links whose MasterIndex is the bridge.
type Bridge struct{}

// Kind returns "bridge".
func (*Bridge) Kind() string                              { return "bridge" }
func (*Bridge) encode(*netlink.AttributeEncoder) error    { return nil }
func (*Bridge) decode(ad *netlink.AttributeDecoder) error { return nil }

// Dummy is a dummy link (kind "dummy"): an interface that drops what it is
// sent, and is always up with carrier. Kernels without CONFIG_DUMMY refuse
// it with ErrNotSupported.
type Dummy struct{}

// Kind returns "dummy".
func (*Dummy) Kind() string                              { return "dummy" }
func (*Dummy) encode(*netlink.AttributeEncoder) error    { return nil }
func (*Dummy) decode(ad *netlink.AttributeDecoder) error { return nil }

// Veth is one end of a virtual ethernet pair (kind "veth"). When creating,
// the Peer fields describe the other end: its name, MTU and address, and
// PeerNetNS, when set, creates it directly in another namespace. The kernel
// does not report them back; the peer's index is the link's ParentIndex.
type Veth struct {
	// PeerName is the name of the other end; empty lets the kernel pick one.
	PeerName string
	// PeerMTU is the other end's MTU; 0 keeps the kernel default.
	PeerMTU int
	// PeerHardwareAddr is the other end's MAC; nil lets the kernel pick one.
	PeerHardwareAddr net.HardwareAddr
	// PeerNetNS, when set, creates the other end in that namespace.
	PeerNetNS *NetNS
}

// Kind returns "veth".
func (*Veth) Kind() string { return "veth" }

func (v *Veth) encode(ae *netlink.AttributeEncoder) error {
	if v.PeerName == "" && v.PeerNetNS == nil && v.PeerMTU == 0 && len(v.PeerHardwareAddr) == 0 {
		return nil
	}
	ae.Do(vethInfoPeer, func() ([]byte, error) {
		pae := netlink.NewAttributeEncoder()
		if len(v.PeerHardwareAddr) > 0 {
			pae.Bytes(linuxabi.IFLA_ADDRESS, v.PeerHardwareAddr)
		}
		if v.PeerName != "" {
			pae.String(linuxabi.IFLA_IFNAME, v.PeerName)
		}
		if v.PeerMTU != 0 {
			pae.Uint32(linuxabi.IFLA_MTU, uint32(v.PeerMTU))
		}
		if v.PeerNetNS != nil {
			pae.Uint32(linuxabi.IFLA_NET_NS_FD, uint32(v.PeerNetNS.Fd()))
		}
		attrs, err := pae.Encode()
		return append(linkHeader(0, 0, 0), attrs...), err
	})
	return nil
}

func (v *Veth) decode(ad *netlink.AttributeDecoder) error { return nil }

// MacvlanMode is the forwarding mode of a macvlan link (IFLA_MACVLAN_MODE).
type MacvlanMode uint32

// Macvlan modes, with the kernel's values.
const (
	MacvlanModePrivate  MacvlanMode = 1
	MacvlanModeVEPA     MacvlanMode = 2
	MacvlanModeBridge   MacvlanMode = 4
	MacvlanModePassthru MacvlanMode = 8
	MacvlanModeSource   MacvlanMode = 16
)

var macvlanModeNames = map[MacvlanMode]string{
	MacvlanModePrivate: "private", MacvlanModeVEPA: "vepa", MacvlanModeBridge: "bridge",
	MacvlanModePassthru: "passthru", MacvlanModeSource: "source",
}

// String returns the mode's name as iproute2 spells it.
func (m MacvlanMode) String() string {
	if s, ok := macvlanModeNames[m]; ok {
		return s
	}
	return fmt.Sprintf("MacvlanMode(%d)", uint32(m))
}

// ParseMacvlanMode parses a mode name: private, vepa, bridge, passthru or source.
func ParseMacvlanMode(s string) (MacvlanMode, error) {
	for m, name := range macvlanModeNames {
		if name == s {
			return m, nil
		}
	}
	return 0, &OpError{Op: "parse macvlan mode", Err: fmt.Errorf("unknown macvlan mode %q (accepted: private, vepa, bridge, passthru, source): %w", s, ErrInvalid)}
}

// MarshalText returns the mode's name, so a MacvlanMode reads as text in
// JSON.
func (m MacvlanMode) MarshalText() ([]byte, error) {
	if _, ok := macvlanModeNames[m]; !ok {
		return nil, &OpError{Op: "marshal macvlan mode", Err: fmt.Errorf("unknown macvlan mode %d: %w", uint32(m), ErrInvalid)}
	}
	return []byte(m.String()), nil
}

// UnmarshalText parses a mode name as [ParseMacvlanMode] does.
func (m *MacvlanMode) UnmarshalText(b []byte) error {
	v, err := ParseMacvlanMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Macvlan is a macvlan link (kind "macvlan") on the lower device given by
// the link's ParentIndex. A zero Mode keeps the kernel default (vepa).
type Macvlan struct {
	// Mode is IFLA_MACVLAN_MODE; 0 keeps the kernel default (vepa).
	Mode MacvlanMode
}

// Kind returns "macvlan".
func (*Macvlan) Kind() string { return "macvlan" }

func (m *Macvlan) encode(ae *netlink.AttributeEncoder) error {
	if m.Mode != 0 {
		ae.Uint32(linuxabi.IFLA_MACVLAN_MODE, uint32(m.Mode))
	}
	return nil
}

func (m *Macvlan) decode(ad *netlink.AttributeDecoder) error {
	for ad.Next() {
		if ad.Type() == linuxabi.IFLA_MACVLAN_MODE {
			m.Mode = MacvlanMode(ad.Uint32())
		}
	}
	return nil
}

// VLAN protocols (IFLA_VLAN_PROTOCOL).
const (
	VLANProtocol8021Q  uint16 = linuxabi.ETH_P_8021Q
	VLANProtocol8021AD uint16 = linuxabi.ETH_P_8021AD
)

// VLAN is an 802.1Q (or 802.1ad) sub-interface (kind "vlan") of the link
// given by ParentIndex. A zero Protocol keeps the kernel default, 802.1Q.
type VLAN struct {
	// ID is the VLAN ID, 0 to 4094.
	ID uint16
	// Protocol is VLANProtocol8021Q or VLANProtocol8021AD; 0 keeps 802.1Q.
	Protocol uint16
}

// Kind returns "vlan".
func (*VLAN) Kind() string { return "vlan" }

func (v *VLAN) encode(ae *netlink.AttributeEncoder) error {
	ae.Uint16(linuxabi.IFLA_VLAN_ID, v.ID)
	if v.Protocol != 0 {
		ae.Bytes(linuxabi.IFLA_VLAN_PROTOCOL, binary.BigEndian.AppendUint16(nil, v.Protocol))
	}
	return nil
}

func (v *VLAN) decode(ad *netlink.AttributeDecoder) error {
	for ad.Next() {
		switch ad.Type() {
		case linuxabi.IFLA_VLAN_ID:
			v.ID = ad.Uint16()
		case linuxabi.IFLA_VLAN_PROTOCOL:
			v.Protocol = beUint16(ad)
		}
	}
	return nil
}

// beUint16 reads a big-endian 16-bit attribute, recording a length error on ad.
func beUint16(ad *netlink.AttributeDecoder) uint16 {
	b := ad.Bytes()
	if len(b) != 2 {
		ad.Do(func([]byte) error { return fmt.Errorf("attribute %d: want 2 bytes, got %d", ad.Type(), len(b)) })
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

// beUint32 reads a big-endian 32-bit attribute, recording a length error on ad.
func beUint32(ad *netlink.AttributeDecoder) uint32 {
	b := ad.Bytes()
	if len(b) != 4 {
		ad.Do(func([]byte) error { return fmt.Errorf("attribute %d: want 4 bytes, got %d", ad.Type(), len(b)) })
		return 0
	}
	return binary.BigEndian.Uint32(b)
}
