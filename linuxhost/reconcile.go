package linuxhost

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/reapgroup"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// Reconciliation is what Reconcile did and found.
type Reconciliation struct {
	// Reaped counts the released links it deleted.
	Reaped int
	// Missing counts the networks whose links were not all there, which
	// it made again (or failed to: see Failed).
	Missing int
	// Failed holds, for each network given, why its links could not be
	// made again, or nil.
	Failed []error
	// Orphans are the links this plugin made for networks not given.
	Orphans []OwnedLink
}

// OwnedLink is a link the plugin made, found on the host.
type OwnedLink struct {
	// Name and Kind are the link's.
	Name, Kind string
	// NetworkID is the network its owner mark names (for a container
	// veth, its bridge's).
	NetworkID string
}

// ownedLinks picks from a listing of the host's links those this plugin
// made, each with the ID of the network it was made for: the links carrying
// an owner mark, and the container veths that are ports of those bridges.
// Links released for deletion are left out.
func ownedLinks(links []*rtlink.Link) []OwnedLink {
	var out []OwnedLink
	owners := map[int]string{} // bridge index -> network ID
	for _, l := range links {
		if reapgroup.Contains(l.Group) {
			continue // being deleted
		}
		if id, ok := strings.CutPrefix(l.Alias, fabric.OwnerMark("")); ok {
			out = append(out, OwnedLink{Name: l.Name, Kind: l.Kind, NetworkID: id})
			if l.Kind == linkKindBridge {
				owners[l.Index] = id
			}
		}
	}
	for _, l := range links {
		if id, ok := owners[l.MasterIndex]; ok && !reapgroup.Contains(l.Group) && l.Kind == linkKindVeth && strings.HasPrefix(l.Name, fabric.HostIfName("")) {
			out = append(out, OwnedLink{Name: l.Name, Kind: l.Kind, NetworkID: id})
		}
	}
	return out
}

// DeleteOwnedLink deletes a link OwnedLinks reported, checking again that
// it is what was reported.
func (h *Host) DeleteOwnedLink(ctx context.Context, o OwnedLink) error {
	l, err := h.conn.LinkByName(ctx, o.Name)
	if errors.Is(err, rtlink.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Kind != o.Kind || (l.Alias != fabric.OwnerMark(o.NetworkID) && l.Kind != linkKindVeth) {
		return fmt.Errorf("%s changed since it was found; it is left alone", o.Name)
	}
	return h.conn.DeleteLink(ctx, o.Name)
}

// Reconcile lists the host's links once, deletes those a crash left
// released, adopts the networks whose links are all there and makes the
// others again with CreateNetwork, and reports the links it made for
// networks not among specs. What it checks of an adopted network: its
// vxlan link (a vxlan, with the network's mark, up) and its bridge (a
// bridge, up, with the vxlan link as a port) and anycast gateway link (with
// the network's mark, up), or its parent, and an EVPN
// network's bridge port flags; not the other settings of the links nor the
// peers' FDB entries, which a reboot, the usual reason links are missing,
// removes together with the links. Last, it builds the VTEP filter's
// table again from the networks it brought back (vtepfilter.go).
func (h *Host) Reconcile(ctx context.Context, specs []*fabric.NetworkSpec) (*Reconciliation, error) {
	// Names, kinds, flags, masters, groups and aliases are all it reads.
	links, err := h.conn.BriefLinks(ctx)
	if err != nil {
		return nil, err
	}
	rec := &Reconciliation{Failed: make([]error, len(specs))}
	if rec.Reaped, err = h.reap.reapListed(ctx, links); err != nil {
		return nil, err
	}
	byName := make(map[string]*rtlink.Link, len(links))
	for _, l := range links {
		if !reapgroup.Contains(l.Group) {
			byName[l.Name] = l
		}
	}
	known := make(map[string]bool, len(specs))
	for i, spec := range specs {
		known[spec.ID] = true
		if !present(spec, byName) {
			rec.Missing++
			rec.Failed[i] = h.CreateNetwork(ctx, spec)
			continue
		}
		// An EVPN network's bridge port flags are not in the listing.
		rec.Failed[i] = h.ensureEVPNPort(ctx, spec, byName[spec.VXLAN.Name])
	}
	for i, err := range h.syncFilter(ctx, specs, rec.Failed) {
		if err != nil {
			rec.Failed[i] = err
		}
	}
	for _, o := range ownedLinks(links) {
		// The CNI front end's networks are its own, never the driver's
		// orphans.
		if !known[o.NetworkID] && !fabric.IsCNINetworkID(o.NetworkID) {
			rec.Orphans = append(rec.Orphans, o)
		}
	}
	return rec, nil
}

// present reports whether a network's links are all in byName.
func present(spec *fabric.NetworkSpec, byName map[string]*rtlink.Link) bool {
	mark := fabric.OwnerMark(spec.ID)
	if spec.Kind == fabric.KindParent {
		p := byName[spec.Parent.Name]
		return p != nil && (!spec.Parent.Isolated || p.Alias == mark)
	}
	vx := byName[spec.VXLAN.Name]
	if vx == nil || vx.Kind != linkKindVXLAN || vx.Alias != mark || !vx.Up || reapgroup.Contains(vx.Group) {
		return false
	}
	if spec.Kind == fabric.KindMacvlan {
		return true
	}
	br := byName[spec.Bridge.Name]
	if br == nil || br.Kind != linkKindBridge || !br.Up || vx.MasterIndex != br.Index || reapgroup.Contains(br.Group) {
		return false
	}
	if spec.HostGateway && spec.AnycastGateway {
		gw := byName[fabric.GatewayLinkName(spec.ID)]
		return gw != nil && gw.Alias == mark && gw.Up
	}
	return true
}
