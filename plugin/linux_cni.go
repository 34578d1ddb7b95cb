package plugin

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// NewEndpoint returns the endpoint of a container attachment with the
// given ID (12 characters of it name the links) and IPv4 address (zero for
// none): its veth or macvlan names, as the Docker driver chooses them, and
// its MAC (02:42 and the IPv4 address, else random).
func NewEndpoint(id string, addr netip.Prefix) *Endpoint {
	return &Endpoint{ID: id, HostIf: endpointHostIf(id), ContainerIf: endpointContainerIf(id), MAC: macFor(addr), Address: addr}
}

// CheckNetwork reports, without changing anything, whether the network's
// links are as CreateNetwork made them: the vxlan link present, made by
// this plugin for this network, up and with the spec's settings, and in
// bridge mode the bridge present, up, with the vxlan link as its port.
func (h *LinuxHost) CheckNetwork(ctx context.Context, spec *NetworkSpec) error {
	if spec.Kind == KindParent {
		return fmt.Errorf("network %s: parent networks are not checked", shortID(spec.ID))
	}
	mark := ownerMark(spec.ID)
	vx, err := h.conn.LinkByName(ctx, spec.VXLAN.Name)
	if err != nil {
		return fmt.Errorf("network %s: vxlan link %s: %w", shortID(spec.ID), spec.VXLAN.Name, err)
	}
	if vx.Kind != linkKindVXLAN || vx.Alias != mark {
		return fmt.Errorf("network %s: %s is %s with alias %q, not the vxlan this plugin made for the network: %w", shortID(spec.ID), vx.Name, kindName(vx.Kind), vx.Alias, rtlink.ErrWrongKind)
	}
	if !vx.Up {
		return fmt.Errorf("network %s: vxlan link %s is down", shortID(spec.ID), vx.Name)
	}
	// Ensure of an existing link only compares (and Up=false asks it not
	// to bring the link up).
	want := spec.VXLAN
	want.Up = false
	if _, err := h.vx.Ensure(ctx, want); err != nil {
		return fmt.Errorf("network %s: %w", shortID(spec.ID), err)
	}
	if spec.Kind != KindBridge {
		return nil
	}
	br, err := h.conn.LinkByName(ctx, spec.Bridge.Name)
	if err != nil {
		return fmt.Errorf("network %s: bridge %s: %w", shortID(spec.ID), spec.Bridge.Name, err)
	}
	if br.Kind != linkKindBridge {
		return fmt.Errorf("network %s: %s is %s, not a bridge: %w", shortID(spec.ID), br.Name, kindName(br.Kind), rtlink.ErrWrongKind)
	}
	if !br.Up {
		return fmt.Errorf("network %s: bridge %s is down", shortID(spec.ID), br.Name)
	}
	if vx.MasterIndex != br.Index {
		return fmt.Errorf("network %s: vxlan link %s is not a port of bridge %s", shortID(spec.ID), vx.Name, br.Name)
	}
	return nil
}

// CheckEndpoint reports whether a bridge-mode endpoint's host end is still
// a port of the network's bridge, and up; other kinds have nothing on the
// host to check.
func (h *LinuxHost) CheckEndpoint(ctx context.Context, spec *NetworkSpec, ep *Endpoint) error {
	if spec.Kind != KindBridge {
		return nil
	}
	l, err := h.conn.LinkByName(ctx, ep.HostIf)
	if err != nil {
		return fmt.Errorf("endpoint %s: host interface %s: %w", shortID(ep.ID), ep.HostIf, err)
	}
	br, err := h.conn.LinkByName(ctx, spec.Bridge.Name)
	if err != nil {
		return fmt.Errorf("endpoint %s: bridge %s: %w", shortID(ep.ID), spec.Bridge.Name, err)
	}
	switch {
	case l.Kind != linkKindVeth:
		return fmt.Errorf("endpoint %s: %s is %s, not a veth: %w", shortID(ep.ID), l.Name, kindName(l.Kind), rtlink.ErrWrongKind)
	case l.MasterIndex != br.Index:
		return fmt.Errorf("endpoint %s: %s is not a port of bridge %s", shortID(ep.ID), l.Name, br.Name)
	case !l.Up:
		return fmt.Errorf("endpoint %s: %s is down", shortID(ep.ID), l.Name)
	}
	return nil
}

// CreateEndpointIn makes a container's interface as CreateEndpoint does,
// but with the container's end made directly in the namespace netns and
// named ifName there (a veth's peer, or the macvlan link itself), so that
// it needs no move between namespaces, which costs the kernel a network
// synchronisation of several milliseconds. On error nothing it made
// remains.
func (h *LinuxHost) CreateEndpointIn(ctx context.Context, spec *NetworkSpec, ep *Endpoint, netns *rtlink.NetNS, ifName string) error {
	if err := h.checkVXLAN(ctx, spec); err != nil {
		return err
	}
	lower, err := h.conn.LinkByName(ctx, lowerOf(spec))
	if err != nil {
		return fmt.Errorf("network %s: %w", shortID(spec.ID), err)
	}
	l := &rtlink.Link{Name: ifName, NetNS: netns, ParentIndex: lower.Index, MTU: spec.ContainerMTU, HardwareAddr: ep.MAC, Data: &rtlink.Macvlan{Mode: spec.MacvlanMode}}
	if spec.Kind == KindBridge {
		l = &rtlink.Link{
			Name:        ep.HostIf,
			MTU:         spec.ContainerMTU,
			MasterIndex: lower.Index,
			Up:          true,
			Data:        &rtlink.Veth{PeerName: ifName, PeerMTU: spec.ContainerMTU, PeerHardwareAddr: ep.MAC, PeerNetNS: netns},
		}
	}
	_, err = h.conn.CreateLink(ctx, l)
	return err
}
