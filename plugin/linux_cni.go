package plugin

import (
	"context"
	"net/netip"
	"strings"
)

// NewEndpoint returns the endpoint of a container attachment with the
// given ID (12 characters of it name the links) and IPv4 address (zero for
// none): its veth or macvlan names, as the Docker driver chooses them, and
// its MAC (02:42 and the IPv4 address, else random).
func NewEndpoint(id string, addr netip.Prefix) *Endpoint {
	return &Endpoint{ID: id, HostIf: endpointHostIf(id), ContainerIf: endpointContainerIf(id), MAC: macFor(addr), Address: addr}
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
