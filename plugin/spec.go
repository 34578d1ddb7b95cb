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
// pools (see Resolve).
func (d *Driver) specFor(ctx context.Context, id string, opts map[string]string, ipv4, ipv6 []IPAMData, ipv6Enabled bool) (*NetworkSpec, error) {
	gateways, err := ipamGateways("IPv4", ipv4)
	if err != nil {
		return nil, err
	}
	if ipv6Enabled {
		gw6, err := ipamGateways("IPv6", ipv6)
		if err != nil {
			return nil, err
		}
		gateways = append(gateways, gw6...)
	}
	return Resolve(ctx, d.cfg.Host, opts, ResolveConfig{ID: id, Scope: d.cfg.Scope, DefaultVTEP: d.vtepDevices, Gateways: gateways})
}

// nameLinks gives the vxlan link and the bridge their names, unless the
// options did.
func nameLinks(spec *NetworkSpec) error {
	if spec.VXLAN.Name == "" {
		spec.VXLAN.Name = vxlanLinkName(spec.ID)
	}
	if spec.Kind != KindBridge {
		return nil
	}
	if spec.Bridge.Name == "" {
		spec.Bridge.Name = bridgeLinkName(spec.ID)
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
func (r *resolver) resolveVTEP(ctx context.Context, spec *NetworkSpec) (int, error) {
	candidates, isDefault := spec.VTEPCandidates, false
	if len(candidates) == 0 {
		candidates, isDefault = r.rc.DefaultVTEP, true
	}
	if len(candidates) == 0 {
		return assumedUnderlayMTU, nil
	}
	dev, mtu, err := r.firstLink(ctx, candidates)
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
func (r *resolver) firstLink(ctx context.Context, names []string) (string, int, error) {
	for _, n := range names {
		mtu, err := r.host.LinkMTU(ctx, n)
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
