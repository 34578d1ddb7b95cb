package cni

import (
	"context"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// segment is the links of another network of this project found on the
// host by their VNI: a Docker network's, which a CNI network with the same
// VNI joins instead of making links of its own. It is kept in the
// attachment's record (record.Segment); its JSON keys are the record's
// on-disk form.
type segment struct {
	// NetworkID is the ID in the links' owner mark.
	NetworkID string `json:"NetworkID"`
	// Kind is fabric.KindBridge when the vxlan link is a port of a bridge
	// with the same mark, else fabric.KindMacvlan.
	Kind fabric.NetworkKind `json:"Kind"`
	// VXLAN and Bridge are the links' names (Bridge empty for macvlan).
	VXLAN  string `json:"VXLAN"`
	Bridge string `json:"Bridge"`
}

// segmentOf returns the network of this project other than spec's whose
// vxlan link has spec's VNI and UDP port, or nil when there is none (also
// when the link with them was not made by this project).
func (s *session) segmentOf(ctx context.Context, spec *fabric.NetworkSpec) (*segment, error) {
	links, err := vxlan.New(s.conn).List(ctx)
	if err != nil {
		return nil, err
	}
	port := spec.Port()
	for _, l := range links {
		if l.VNI != spec.VXLAN.VNI || l.Port != port {
			continue
		}
		id, ok := fabric.NetworkOfMark(l.Alias)
		if !ok || id == spec.ID {
			return nil, nil
		}
		seg := &segment{NetworkID: id, Kind: fabric.KindMacvlan, VXLAN: l.Name}
		vx, err := s.conn.LinkByName(ctx, l.Name)
		if err != nil {
			return nil, err
		}
		if vx.MasterIndex != 0 {
			br, err := s.conn.LinkByIndex(ctx, vx.MasterIndex)
			if err != nil {
				return nil, err
			}
			if br.Kind == (&rtlink.Bridge{}).Kind() && br.Alias == l.Alias {
				seg.Kind, seg.Bridge = fabric.KindBridge, br.Name
			}
		}
		return seg, nil
	}
	return nil, nil
}

// on returns a copy of spec that attaches to the segment's links instead
// of its own: their names and owner mark. The host's CheckNetwork of it
// compares the segment with what spec asks for; CreateEndpoint and
// DeleteEndpoint of it attach and detach containers; DeleteNetwork of it
// must not be called, as the links are the other network's.
func (seg *segment) on(spec *fabric.NetworkSpec) *fabric.NetworkSpec {
	c := *spec
	c.ID = seg.NetworkID
	c.VXLAN.Name, c.VXLAN.Alias = seg.VXLAN, fabric.OwnerMark(seg.NetworkID)
	c.Bridge.Name = seg.Bridge
	// Its VTEP filter is the Docker network's own, as the Docker plugin's
	// flag and options make it: neither checked nor touched from here.
	off := false
	c.VTEPFilter = &off
	return &c
}
