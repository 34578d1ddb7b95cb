package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// OwnedLinks lists the vxlan links, bridges and isolated parents carrying
// an owner mark, and the container veths that are ports of those bridges.
func (h *LinuxHost) OwnedLinks(ctx context.Context) ([]OwnedLink, error) {
	links, err := h.conn.Links(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []OwnedLink
	owners := map[int]string{} // bridge index -> network ID
	for _, l := range links {
		if l.Group == ReapGroup {
			continue // being deleted
		}
		if id, ok := strings.CutPrefix(l.Alias, ownerMark("")); ok {
			out = append(out, OwnedLink{Name: l.Name, Kind: l.Kind, NetworkID: id})
			if l.Kind == linkKindBridge {
				owners[l.Index] = id
			}
		}
	}
	for _, l := range links {
		if id, ok := owners[l.MasterIndex]; ok && l.Group != ReapGroup && l.Kind == linkKindVeth && strings.HasPrefix(l.Name, endpointHostIf("")) {
			out = append(out, OwnedLink{Name: l.Name, Kind: l.Kind, NetworkID: id})
		}
	}
	return out, nil
}

// DeleteOwnedLink deletes a link OwnedLinks reported, checking again that
// it is what was reported.
func (h *LinuxHost) DeleteOwnedLink(ctx context.Context, o OwnedLink) error {
	l, err := h.conn.LinkByName(ctx, o.Name)
	if errors.Is(err, rtlink.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Kind != o.Kind || (l.Alias != ownerMark(o.NetworkID) && l.Kind != linkKindVeth) {
		return fmt.Errorf("%s changed since it was found; it is left alone", o.Name)
	}
	return h.conn.DeleteLink(ctx, o.Name)
}

// RestoreNetworks adopts the networks whose links are all there, found in
// one listing of the host's links, and makes the others again with
// CreateNetwork. What it checks of an adopted network: its vxlan link (a
// vxlan, with the network's mark, up) and its bridge (a bridge, up, with the
// vxlan link as a port), or its parent; not the settings of the links nor
// the peers' FDB entries, which a reboot, the usual reason links are
// missing, removes together with the links.
func (h *LinuxHost) RestoreNetworks(ctx context.Context, specs []*NetworkSpec) []error {
	errs := make([]error, len(specs))
	links, err := h.conn.Links(ctx, "")
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	byName := make(map[string]*rtlink.Link, len(links))
	for _, l := range links {
		byName[l.Name] = l
	}
	for i, spec := range specs {
		if !present(spec, byName) {
			errs[i] = h.CreateNetwork(ctx, spec)
			continue
		}
		// An EVPN network's bridge port flags are not in the listing.
		errs[i] = h.ensureEVPNPort(ctx, spec, byName[spec.VXLAN.Name])
	}
	return errs
}

// present reports whether a network's links are all in byName.
func present(spec *NetworkSpec, byName map[string]*rtlink.Link) bool {
	mark := ownerMark(spec.ID)
	if spec.Kind == KindParent {
		p := byName[spec.Parent.Name]
		return p != nil && (!spec.Parent.Isolated || p.Alias == mark)
	}
	vx := byName[spec.VXLAN.Name]
	if vx == nil || vx.Kind != linkKindVXLAN || vx.Alias != mark || !vx.Up || vx.Group == ReapGroup {
		return false
	}
	if spec.Kind == KindMacvlan {
		return true
	}
	br := byName[spec.Bridge.Name]
	return br != nil && br.Kind == linkKindBridge && br.Up && vx.MasterIndex == br.Index && br.Group != ReapGroup
}

var _ Host = (*LinuxHost)(nil)
