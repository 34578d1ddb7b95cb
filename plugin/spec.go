package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
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
	// HostGateway puts the gateway addresses on the bridge (bridge kind
	// only). The HostGateway option decides it, or else the scope: on in
	// local scope, off in global scope.
	HostGateway bool
	// Gateways are the network's gateways with their pools' prefix lengths.
	Gateways []netip.Prefix
	// ContainerMTU is the MTU of the containers' interfaces: bridgeMTU,
	// else the vxlan link's MTU, else the parent's MTU.
	ContainerMTU int

	// hostGatewayOption is the HostGateway option, if given; the driver
	// turns it into HostGateway once the scope is known.
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

// genericOptions extracts the user's -o options from a CreateNetwork request.
func genericOptions(opts map[string]any) (map[string]string, error) {
	raw, ok := opts[optGeneric]
	if !ok || raw == nil {
		return map[string]string{}, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an object", optGeneric)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, &OptionError{Option: k, Value: fmt.Sprint(v), Problem: "not a string"}
		}
		out[k] = s
	}
	return out, nil
}

// ipamGateways reads the gateways of a network's pools (CIDR, as dockerd
// sends them in CreateNetwork).
func ipamGateways(family string, data []IPAMData) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, d := range data {
		if d.Gateway == "" {
			continue
		}
		p, err := netip.ParsePrefix(d.Gateway)
		if err != nil {
			return nil, fmt.Errorf("%s gateway %q: not an address in CIDR notation", family, d.Gateway)
		}
		out = append(out, p)
	}
	return out, nil
}

// specFor builds and checks the spec of a network from its options and
// pools. It reads from the host only which interfaces exist and their MTUs.
func (d *Driver) specFor(ctx context.Context, id string, opts map[string]string, ipv4, ipv6 []IPAMData, ipv6Enabled bool) (*NetworkSpec, error) {
	spec, err := ParseOptions(opts)
	if err != nil {
		return nil, err
	}
	spec.ID = id
	if spec.Gateways, err = ipamGateways("IPv4", ipv4); err != nil {
		return nil, err
	}
	if ipv6Enabled {
		gw6, err := ipamGateways("IPv6", ipv6)
		if err != nil {
			return nil, err
		}
		spec.Gateways = append(spec.Gateways, gw6...)
	}
	switch spec.Kind {
	case KindParent:
		// A macvlan link cannot reach its own lower device, so the gateway
		// is never put on the host for parent and macvlan networks.
		return spec, d.resolveParent(ctx, spec)
	case KindBridge:
		spec.HostGateway = d.cfg.Scope == ScopeLocal
		if spec.hostGatewayOption != nil {
			spec.HostGateway = *spec.hostGatewayOption
		}
	}
	if err := d.nameLinks(spec); err != nil {
		return nil, err
	}
	v := &spec.VXLAN
	if v.Learning == nil {
		v.Learning = vxlan.Ptr(true)
	}
	v.Alias = ownerMark(id)
	v.Up = true
	underlayMTU, err := d.resolveVTEP(ctx, spec)
	if err != nil {
		return nil, err
	}
	if err := d.completeEVPN(ctx, spec); err != nil {
		return nil, err
	}
	setMTUs(spec, underlayMTU)
	return spec, optionErrorOf(v.Validate())
}

// nameLinks gives the vxlan link and the bridge their names, unless the
// options did.
func (d *Driver) nameLinks(spec *NetworkSpec) error {
	if spec.VXLAN.Name == "" {
		spec.VXLAN.Name = vxlanLinkName(spec.ID)
	}
	if spec.Kind != KindBridge {
		return nil
	}
	if spec.Bridge.Name == "" {
		spec.Bridge.Name = bridgeLinkName(spec.ID)
	}
	// A bridge without a MAC of its own takes the lowest MAC of its ports,
	// and the kernel empties its neighbour table whenever that changes: on
	// container starts and stops. So the bridge gets a random locally
	// administered one, kept in the state.
	if spec.Bridge.HardwareAddr == nil {
		spec.Bridge.HardwareAddr = macFor(netip.Prefix{})
	}
	if spec.VXLAN.Name == spec.Bridge.Name {
		return &OptionError{Option: "bridgeName", Value: spec.Bridge.Name, Problem: "same name as the vxlan interface", Accepted: "a name other than vxlanName"}
	}
	return nil
}

// assumedUnderlayMTU is the underlay MTU of a network without VTEP device.
const assumedUnderlayMTU = 1500

// resolveVTEP sets the vxlan link's device: the first of the network's
// VtepDev list, or else of the driver's default list, that exists on this
// host. It returns the device's MTU.
func (d *Driver) resolveVTEP(ctx context.Context, spec *NetworkSpec) (int, error) {
	candidates, isDefault := spec.VTEPCandidates, false
	if len(candidates) == 0 {
		candidates, isDefault = d.vtepDevices, true
	}
	if len(candidates) == 0 {
		return assumedUnderlayMTU, nil
	}
	dev, mtu, err := d.firstLink(ctx, candidates)
	switch {
	case err != nil && isDefault:
		return 0, fmt.Errorf("the plugin's default VTEP device %s: %w; give the network the VtepDev option", strings.Join(candidates, ","), err)
	case err != nil:
		return 0, &OptionError{Option: "VtepDev", Value: strings.Join(candidates, ","), Problem: err.Error(), Accepted: mustOption("VtepDev").Accepted, Err: err}
	}
	spec.VXLAN.Device = dev
	return mtu, nil
}

// setMTUs derives the vxlan link's MTU from the underlay's, unless given,
// and the containers' MTU: bridgeMTU, else the vxlan link's.
func setMTUs(spec *NetworkSpec, underlayMTU int) {
	overhead := vxlan.OverheadIPv4
	if spec.UnderlayIPv6() {
		overhead = vxlan.OverheadIPv6
	}
	if spec.VXLAN.MTU == 0 {
		spec.VXLAN.MTU = underlayMTU - overhead
	}
	spec.ContainerMTU = spec.VXLAN.MTU
	if spec.Bridge.MTU != 0 {
		spec.ContainerMTU = spec.Bridge.MTU
	}
}

// optionErrorOf reports a vxlan.Config refusal as a refusal of the option
// that set the field.
func optionErrorOf(err error) error {
	var ce *vxlan.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	opt, accepted := ce.Field, ce.Accepted
	if o := optionForField(ce.Field); o != nil {
		opt, accepted = o.Name, o.Accepted
	}
	problem := ce.Problem
	if problem == "" {
		problem = "not accepted by the vxlan link"
	}
	return &OptionError{Option: opt, Value: fmt.Sprint(ce.Value), Problem: problem, Accepted: accepted, Err: err}
}

// firstLink returns the first of names that exists on the host, with its
// MTU, or an error naming every candidate that matches vxlan.ErrNotFound.
func (d *Driver) firstLink(ctx context.Context, names []string) (string, int, error) {
	for _, n := range names {
		mtu, err := d.cfg.Host.LinkMTU(ctx, n)
		if err == nil {
			return n, mtu, nil
		}
		if !errors.Is(err, vxlan.ErrNotFound) {
			return "", 0, err
		}
	}
	if len(names) == 1 {
		return "", 0, &notOnHostError{"no such interface on this host"}
	}
	return "", 0, &notOnHostError{fmt.Sprintf("none of %s exists on this host", strings.Join(names, ", "))}
}

// notOnHostError says that interfaces a network names do not exist here;
// it matches vxlan.ErrNotFound.
type notOnHostError struct{ msg string }

func (e *notOnHostError) Error() string { return e.msg }
func (e *notOnHostError) Unwrap() error { return vxlan.ErrNotFound }

// hasIPv6Gateway reports whether the network puts an IPv6 gateway on its
// bridge.
func (s *NetworkSpec) hasIPv6Gateway() bool {
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
