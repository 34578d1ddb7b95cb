package fabric

import (
	"net"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Scopes of a network: one host's, or one spanning the hosts of a swarm
// (or of a CNI cluster).
const (
	ScopeLocal  = "local"
	ScopeGlobal = "global"
)

// NetworkKind says how a network attaches its containers.
type NetworkKind string

// The kinds of network.
const (
	// KindBridge: a vxlan link in a Linux bridge, a veth pair per
	// container with the host end in the bridge (the default).
	KindBridge NetworkKind = "bridge"
	// KindMacvlan: a vxlan link and no bridge; each container gets a
	// macvlan link on the vxlan link (-o mode=macvlan).
	KindMacvlan NetworkKind = "macvlan"
	// KindParent: no vxlan; each container gets a macvlan link on a host
	// interface (-o parent=..., no VxlanId), as Docker's macvlan driver.
	KindParent NetworkKind = "parent"
)

// NetworkSpec is a network's typed configuration: what its -o options,
// its address pools and the daemon's flags say, validated.
type NetworkSpec struct {
	// ID is dockerd's network ID.
	ID string
	// Kind is how the network attaches containers.
	Kind NetworkKind
	// VXLAN is the vxlan link (bridge and macvlan kinds). Its Device is the
	// VTEP device.
	VXLAN vxlan.Config
	// VTEPCandidates are the names VtepDev listed, first existing wins.
	VTEPCandidates []string
	// Bridge is the Linux bridge of a bridge-kind network.
	Bridge BridgeSpec
	// Parent is the host interface of a parent-kind network.
	Parent ParentSpec
	// MacvlanMode is the containers' macvlan mode (macvlan and parent
	// kinds): bridge, private, vepa or passthru.
	MacvlanMode rtlink.MacvlanMode
	// Peers are remote VTEPs that get head-end replication FDB entries.
	Peers []netip.Addr
	// ControlPlane is how the VTEPs and remote MACs are found: flood and
	// learn, or BGP EVPN through a routing daemon (see evpn.go).
	ControlPlane ControlPlane
	// VTEPFilter is the VtepFilter option: whether the network's VXLAN
	// packets are admitted only from its VTEPs; nil leaves it to the
	// daemon's default.
	VTEPFilter *bool
	// VTEPAllow are the sources the VTEP filter admits besides the
	// network's VTEPs (the VtepAllow option).
	VTEPAllow []netip.Prefix
	// HostGateway puts the gateway addresses on the bridge (bridge kind
	// only). The HostGateway option decides it, or else the scope: on in
	// local scope, off in global scope.
	HostGateway bool
	// Gateways are the network's gateways with their pools' prefix lengths.
	Gateways []netip.Prefix
	// AnycastGateway, with HostGateway, puts the gateway addresses not on
	// the bridge but on a macvlan link over it (GatewayLinkName) whose MAC
	// is GatewayMAC: the same on every host of the segment, so that
	// containers see one gateway MAC wherever they run and what they send
	// to it stays on their own host. The bridge then carries the host's
	// own addresses on the segment (HostAddresses), for what the host
	// itself sends and the answers to it.
	AnycastGateway bool
	// HostAddresses are this host's own addresses on the segment, with
	// their pools' prefix lengths, put on the bridge of a network with an
	// anycast gateway. Unlike the gateway's, they are unique per host (an
	// address allocator hands them out).
	HostAddresses []netip.Prefix
	// ContainerMTU is the MTU of the containers' interfaces: bridgeMTU,
	// else the vxlan link's MTU, else the parent's MTU.
	ContainerMTU int

	// hostGatewayOption is the HostGateway option, if given; Resolve turns
	// it into HostGateway once the scope is known.
	hostGatewayOption *bool
}

// ParentSpec is the parent interface of a parent-kind network.
type ParentSpec struct {
	// Candidates are the names the parent or parent-file option listed, in
	// order; the first that can be used on this host wins.
	Candidates []string
	// File is the parent-file the candidates came from, if any.
	File string
	// Name is the interface chosen on this host.
	Name string
	// VLAN is set when Name is an 802.1Q sub-interface (master.id) that did
	// not exist and is made for the network.
	VLAN *VLANParent
	// Isolated is set when no parent was given (local scope only): the
	// parent is a link the plugin makes, and containers reach each other on
	// this host only.
	Isolated bool
}

// VLANParent is an 802.1Q sub-interface to make: ID on Master.
type VLANParent struct {
	Master string
	ID     uint16
}

// BridgeSpec describes the bridge of a network.
type BridgeSpec struct {
	Name         string
	MTU          int
	HardwareAddr net.HardwareAddr
	TxQueueLen   int
}

// Port returns the UDP port of the network's vxlan link.
func (s *NetworkSpec) Port() uint16 { return vxlan.EffectivePort(s.VXLAN.Port) }

// UnderlayIPv6 reports whether the network's underlay is IPv6, as far as
// its options say (IPv4 otherwise).
func (s *NetworkSpec) UnderlayIPv6() bool {
	if s.VXLAN.Group.IsValid() {
		return s.VXLAN.Group.Is6()
	}
	if s.VXLAN.Local.IsValid() {
		return s.VXLAN.Local.Is6()
	}
	return len(s.Peers) > 0 && s.Peers[0].Is6()
}

// HasIPv6Gateway reports whether the network puts an IPv6 gateway on its
// bridge.
func (s *NetworkSpec) HasIPv6Gateway() bool {
	if !s.HostGateway {
		return false
	}
	for _, gw := range s.Gateways {
		if gw.Addr().Is6() {
			return true
		}
	}
	return false
}

// SegmentLink names the link through which this host reaches the
// network's layer-2 segment with frames of its own: the bridge (bridge
// kind), the vxlan link (macvlan kind) or the parent interface (parent
// kind). Duplicate-address probes go out through it.
func (s *NetworkSpec) SegmentLink() string {
	switch s.Kind {
	case KindBridge:
		return s.Bridge.Name
	case KindMacvlan:
		return s.VXLAN.Name
	default:
		return s.Parent.Name
	}
}
