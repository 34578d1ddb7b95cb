package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Kind says how a network attaches its containers.
type Kind string

// The kinds of network.
const (
	// KindBridge: a vxlan link in a Linux bridge, a veth pair per
	// container with the host end in the bridge (the default).
	KindBridge Kind = "bridge"
	// KindMacvlan: a vxlan link and no bridge; each container gets a
	// macvlan link on the vxlan link (-o mode=macvlan).
	KindMacvlan Kind = "macvlan"
	// KindParent: no vxlan; each container gets a macvlan link on a host
	// interface (-o parent=..., no VxlanId), as Docker's macvlan driver.
	KindParent Kind = "parent"
)

// NetworkSpec is a network's typed configuration: what its -o options,
// its address pools and the daemon's flags say, validated.
type NetworkSpec struct {
	// ID is dockerd's network ID.
	ID string
	// Kind is how the network attaches containers.
	Kind Kind
	// VXLAN is the vxlan link (bridge and macvlan kinds). Its Device is the
	// VTEP device.
	VXLAN vxlan.Config
	// VTEPCandidates are the names VtepDev listed, first existing wins.
	VTEPCandidates []string
	// Bridge is the Linux bridge of a bridge-kind network.
	Bridge BridgeSpec
	// Parent is the host interface of a parent-kind network.
	Parent ParentSpec
	// MacvlanMode is the containers' macvlan mode (macvlan and parent kinds):
	// bridge, private, vepa or passthru.
	MacvlanMode string
	// Peers are remote VTEPs that get head-end replication FDB entries.
	Peers []netip.Addr
	// HostGateway puts the gateway addresses on the bridge; nil follows the
	// scope (on in local scope, off in global scope).
	HostGateway *bool
	// Gateways are the network's gateways with their pools' prefix lengths.
	Gateways []netip.Prefix
	// ContainerMTU is the MTU of the containers' interfaces; 0 until the
	// network is created on the host, which derives it.
	ContainerMTU int
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
	if spec.Kind == KindParent {
		spec.HostGateway = vxlan.Ptr(false) // the seeds' rule: never on the host
		return spec, d.resolveParent(ctx, spec)
	}
	if spec.Kind == KindMacvlan {
		spec.HostGateway = vxlan.Ptr(false) // seed 004: never on the host
	}
	if spec.HostGateway == nil {
		spec.HostGateway = vxlan.Ptr(d.cfg.Scope == ScopeLocal)
	}
	v := &spec.VXLAN
	if v.Name == "" {
		v.Name = "vx_" + shortID(id)
	}
	if spec.Kind == KindBridge {
		if spec.Bridge.Name == "" {
			spec.Bridge.Name = "br_" + shortID(id)
		}
		if v.Name == spec.Bridge.Name {
			return nil, &OptionError{Option: "bridgeName", Value: spec.Bridge.Name, Problem: "same name as the vxlan interface", Accepted: "a name other than vxlanName"}
		}
	}
	if v.Learning == nil {
		v.Learning = vxlan.Ptr(true)
	}
	v.Alias = ownerMark(id)
	v.Up = true

	// The VTEP device: the first of the network's list, or of the daemon's,
	// that exists here.
	candidates, fromFlag := spec.VTEPCandidates, false
	if len(candidates) == 0 {
		candidates, fromFlag = d.vtepDevices, true
	}
	underlay := 1500 // assumed when no VTEP device is named
	if len(candidates) > 0 {
		v.Device, underlay, err = d.firstLink(ctx, candidates)
		switch {
		case err != nil && fromFlag:
			return nil, fmt.Errorf("VTEP device from the daemon's flag -vtepdev=%s: %v; give the network -o VtepDev", strings.Join(candidates, ","), err)
		case err != nil:
			return nil, &OptionError{Option: "VtepDev", Value: strings.Join(candidates, ","), Problem: err.Error(), Accepted: findOption("VtepDev").Accepted}
		}
	}
	if v.Group.IsMulticast() && v.Device == "" {
		return nil, &OptionError{Option: "Group", Value: v.Group.String(), Problem: "a multicast group needs a VTEP device", Accepted: "VtepDev or the daemon's -vtepdev set, or a unicast Group"}
	}

	// MTU: the VTEP device's less the encapsulation, unless given.
	overhead := 50
	if spec.UnderlayIPv6() {
		overhead = 70
	}
	if v.MTU == 0 {
		v.MTU = underlay - overhead
	}
	spec.ContainerMTU = v.MTU
	if spec.Bridge.MTU != 0 {
		spec.ContainerMTU = spec.Bridge.MTU
	}
	if err := v.Validate(); err != nil {
		var ce *vxlan.ConfigError
		if errors.As(err, &ce) {
			opt, ok := configFieldOption[ce.Field]
			if !ok {
				opt = ce.Field
			}
			return nil, &OptionError{Option: opt, Value: fmt.Sprint(ce.Value), Problem: "not accepted by the vxlan link", Accepted: ce.Accepted}
		}
		return nil, err
	}
	return spec, nil
}

// firstLink returns the first of names that exists on the host, with its
// MTU, or an error naming every candidate.
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
		return "", 0, fmt.Errorf("no such interface on this host")
	}
	return "", 0, fmt.Errorf("none of %s exists on this host", strings.Join(names, ", "))
}

// configFieldOption names the option behind each vxlan.Config field, for
// the errors of the final check.
var configFieldOption = map[string]string{
	"Name": "vxlanName", "VNI": "VxlanId", "Device": "VtepDev", "Group": "Group", "Local": "SrcAddr",
	"SrcPorts": "PortLow", "TTL": "TTL", "TOS": "TOS", "Ageing": "Age", "MTU": "vxlanMTU",
	"HardwareAddr": "vxlanHardwareAddr", "TxQueueLen": "vxlanTxQLen",
}
