package plugin

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

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

// Segment is the links of a network of this plugin found on the host by
// their VNI: made by the Docker plugin, or for another CNI network.
type Segment struct {
	// NetworkID is the ID in the links' owner mark.
	NetworkID string
	// Kind is KindBridge when the vxlan link is a port of a bridge with
	// the same mark, else KindMacvlan.
	Kind NetworkKind
	// VXLAN and Bridge are the links' names (Bridge empty for macvlan).
	VXLAN, Bridge string
}

// SegmentOf returns the network of this plugin other than spec's whose
// vxlan link has spec's VNI and UDP port, or nil when there is none (also
// when the link with them was not made by this plugin).
func (h *LinuxHost) SegmentOf(ctx context.Context, spec *NetworkSpec) (*Segment, error) {
	links, err := h.vx.List(ctx)
	if err != nil {
		return nil, err
	}
	port := effectivePort(spec)
	for _, l := range links {
		if l.VNI != spec.VXLAN.VNI || l.Port != port {
			continue
		}
		id, ok := strings.CutPrefix(l.Alias, ownerMark(""))
		if !ok || id == spec.ID {
			return nil, nil
		}
		seg := &Segment{NetworkID: id, Kind: KindMacvlan, VXLAN: l.Name}
		vx, err := h.conn.LinkByName(ctx, l.Name)
		if err != nil {
			return nil, err
		}
		if vx.MasterIndex != 0 {
			br, err := h.conn.LinkByIndex(ctx, vx.MasterIndex)
			if err != nil {
				return nil, err
			}
			if br.Kind == linkKindBridge && br.Alias == l.Alias {
				seg.Kind, seg.Bridge = KindBridge, br.Name
			}
		}
		return seg, nil
	}
	return nil, nil
}

// On returns a copy of spec that attaches to the segment's links instead
// of its own: their names and owner mark. CheckNetwork of it compares the
// segment with what spec asks for; CreateEndpointIn and DeleteEndpoint of
// it attach and detach containers; DeleteNetwork of it must not be called,
// as the links are the other network's.
func (seg *Segment) On(spec *NetworkSpec) *NetworkSpec {
	c := *spec
	c.ID = seg.NetworkID
	c.VXLAN.Name, c.VXLAN.Alias = seg.VXLAN, ownerMark(seg.NetworkID)
	c.Bridge.Name = seg.Bridge
	return &c
}
