package linuxhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/reapgroup"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// NetworkStatus is one network as the state knows it and as the kernel has
// it. Every item with a non-empty Drift differs from what was asked.
type NetworkStatus struct {
	// ID is dockerd's network ID.
	ID string `json:"id"`
	// Kind is how the network attaches containers.
	Kind fabric.NetworkKind `json:"kind"`
	// VNI is the vxlan network identifier (not for parent networks).
	VNI uint32 `json:"vni,omitempty"`
	// Links are the network's own links: vxlan link, bridge, or parent.
	Links []ItemStatus `json:"links"`
	// Peers are the remote VTEPs of the Peers option, each an FDB entry
	// of the vxlan link.
	Peers []ItemStatus `json:"peers"`
	// Endpoints are the network's containers' attachments, sorted by ID.
	Endpoints []ItemStatus `json:"endpoints"`
	// Counters are what the kernel counts for its vxlan link, when they
	// were read (see Counters): the numbers the metrics export.
	Counters *NetworkCounters `json:"counters,omitempty"`
	// Filter is the network's VTEP filter, on a host that filters (see
	// WithVTEPFilter).
	Filter *FilterStatus `json:"vtep_filter,omitempty"`
}

// ItemStatus is one checked item: a link, a peer or an endpoint.
type ItemStatus struct {
	// Name is the link's name, the peer's address or the endpoint's ID.
	Name string `json:"name"`
	// Role says what the item is to the network: "vxlan", "bridge",
	// "parent", "anycast gateway", "fdb peer", or an endpoint's link
	// ("veth vhXXX").
	Role string `json:"role"`
	// Drift lists how the kernel differs from what the state asks, one
	// sentence each ("link missing", "TTL is 64, want 32"); empty when it
	// is as asked.
	Drift []string `json:"drift,omitempty"`
	// Note says what was not checked, and why.
	Note string `json:"note,omitempty"`
}

// Err is nil when the network is as its state asks, and otherwise an
// error naming every item that differs and how: the answer of a check that
// fails, such as the CNI plugin's CHECK.
func (s NetworkStatus) Err() error {
	var parts []string
	for _, items := range [][]ItemStatus{s.Links, s.Peers, s.Endpoints} {
		for _, it := range items {
			if len(it.Drift) > 0 {
				parts = append(parts, fmt.Sprintf("%s %s: %s", it.Role, it.Name, strings.Join(it.Drift, ", ")))
			}
		}
	}
	if f := s.Filter; f != nil && len(f.Drift) > 0 {
		parts = append(parts, fmt.Sprintf("%s %s: %s", FilterRole, f.Name, strings.Join(f.Drift, ", ")))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("network %s: %s", fabric.ShortID(s.ID), strings.Join(parts, "; "))
}

// CheckNetwork compares a network's links, its peers' FDB entries and its
// endpoints' host links with what spec and eps ask, reading each of those
// links by name, and changes nothing. The vxlan link's settings are
// compared field by field as vxlan.Client.Ensure compares them.
//
// Reading by name costs the same with 1 or 4096 networks on the host; a
// listing of every link, once per network checked, made a status of
// thousands of networks take minutes.
func (h *Host) CheckNetwork(ctx context.Context, spec *fabric.NetworkSpec, eps []*fabric.Endpoint) NetworkStatus {
	st := NetworkStatus{ID: spec.ID, Kind: spec.Kind, Links: []ItemStatus{}, Peers: []ItemStatus{}, Endpoints: []ItemStatus{}}
	names := []string{spec.Parent.Name}
	if spec.Kind != fabric.KindParent {
		names = []string{spec.VXLAN.Name, spec.Bridge.Name, fabric.GatewayLinkName(spec.ID)}
		for _, ep := range eps {
			names = append(names, ep.HostIf)
		}
	}
	byName, err := h.linksByName(ctx, names)
	if err != nil {
		st.Links = append(st.Links, ItemStatus{Name: "(all)", Role: "links", Drift: []string{fmt.Sprintf("reading the host's links: %v", err)}})
		return st
	}
	mark := fabric.OwnerMark(spec.ID)
	if spec.Kind == fabric.KindParent {
		it := ItemStatus{Name: spec.Parent.Name, Role: "parent"}
		p := byName[spec.Parent.Name]
		switch {
		case p == nil:
			it.Drift = append(it.Drift, "link missing")
		case spec.Parent.Isolated && p.Alias != mark:
			it.Drift = append(it.Drift, fmt.Sprintf("not this plugin's link for the network: alias %q, want %q", p.Alias, mark))
		}
		st.Links = append(st.Links, it)
		st.Endpoints = append(st.Endpoints, endpointItems(spec, eps, nil, nil)...)
		return st
	}
	st.VNI = spec.VXLAN.VNI
	vx := byName[spec.VXLAN.Name]
	st.Links = append(st.Links, h.checkVXLANLink(ctx, spec, vx))
	var br *rtlink.Link
	if spec.Kind == fabric.KindBridge {
		br = byName[spec.Bridge.Name]
		st.Links = append(st.Links, checkBridgeLink(spec, br, vx))
		if spec.HostGateway && spec.AnycastGateway {
			st.Links = append(st.Links, h.checkGatewayLink(ctx, spec, byName[fabric.GatewayLinkName(spec.ID)], br))
		}
	}
	st.Filter = h.checkFilter(ctx, spec)
	st.Peers = h.checkPeers(ctx, spec, vx)
	st.Endpoints = endpointItems(spec, eps, byName, br)
	return st
}

// linksByName reads the links called names; those that do not exist are
// left out.
func (h *Host) linksByName(ctx context.Context, names []string) (map[string]*rtlink.Link, error) {
	byName := make(map[string]*rtlink.Link, len(names))
	for _, name := range names {
		if name == "" || byName[name] != nil {
			continue
		}
		l, err := h.conn.LinkByName(ctx, name)
		if errors.Is(err, rtlink.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		byName[name] = l
	}
	return byName, nil
}

// checkVXLANLink checks the network's vxlan link: there, a vxlan, with the
// network's owner mark, up, not being deleted, and with the settings asked.
func (h *Host) checkVXLANLink(ctx context.Context, spec *fabric.NetworkSpec, vx *rtlink.Link) ItemStatus {
	it := ItemStatus{Name: spec.VXLAN.Name, Role: "vxlan"}
	switch {
	case vx == nil:
		it.Drift = append(it.Drift, "link missing")
		return it
	case vx.Kind != linkKindVXLAN:
		it.Drift = append(it.Drift, fmt.Sprintf("is %s, not a vxlan", kindName(vx.Kind)))
		return it
	case vx.Alias != fabric.OwnerMark(spec.ID):
		it.Drift = append(it.Drift, fmt.Sprintf("not this plugin's link for the network: alias %q, want %q", vx.Alias, fabric.OwnerMark(spec.ID)))
		return it
	case reapgroup.Contains(vx.Group):
		it.Drift = append(it.Drift, "being deleted (released to the background deletion)")
		return it
	}
	if !vx.Up {
		it.Drift = append(it.Drift, "down, want up")
	}
	have, err := h.vx.Get(ctx, spec.VXLAN.Name)
	if err != nil {
		it.Drift = append(it.Drift, fmt.Sprintf("reading its settings: %v", err))
		return it
	}
	for _, d := range vxlan.Compare(spec.VXLAN, have) {
		it.Drift = append(it.Drift, fmt.Sprintf("%s is %s, want %s", d.Field, d.Have, d.Want))
	}
	return it
}

// checkBridgeLink checks the network's bridge: there, a bridge, up, not
// another network's, with the vxlan link as a port. A bridge the operator
// named with bridgeName carries no mark of this plugin, and needs none.
func checkBridgeLink(spec *fabric.NetworkSpec, br, vx *rtlink.Link) ItemStatus {
	it := ItemStatus{Name: spec.Bridge.Name, Role: "bridge"}
	switch {
	case br == nil:
		it.Drift = append(it.Drift, "link missing")
		return it
	case br.Kind != linkKindBridge:
		it.Drift = append(it.Drift, fmt.Sprintf("is %s, not a bridge", kindName(br.Kind)))
		return it
	case br.Alias != fabric.OwnerMark(spec.ID) && isOwnerMark(br.Alias):
		it.Drift = append(it.Drift, fmt.Sprintf("belongs to another network of this plugin: alias %q", br.Alias))
		return it
	case reapgroup.Contains(br.Group):
		it.Drift = append(it.Drift, "being deleted (released to the background deletion)")
		return it
	}
	if !br.Up {
		it.Drift = append(it.Drift, "down, want up")
	}
	if vx != nil && vx.MasterIndex != br.Index {
		it.Drift = append(it.Drift, fmt.Sprintf("%s is not a port of it", spec.VXLAN.Name))
	}
	if spec.Bridge.MTU != 0 && br.MTU != spec.Bridge.MTU {
		it.Drift = append(it.Drift, fmt.Sprintf("MTU is %d, want %d", br.MTU, spec.Bridge.MTU))
	}
	return it
}

// checkGatewayLink checks the network's anycast gateway link: there, the
// plugin's macvlan for the network, up, over the bridge, with the
// network's gateway MAC; and that no strict reverse-path filter drops
// what containers send through it (strictRPFilter).
func (h *Host) checkGatewayLink(ctx context.Context, spec *fabric.NetworkSpec, gw, br *rtlink.Link) ItemStatus {
	it := ItemStatus{Name: fabric.GatewayLinkName(spec.ID), Role: "anycast gateway"}
	switch {
	case gw == nil:
		it.Drift = append(it.Drift, "link missing")
		return it
	case gw.Kind != linkKindMacvlan || gw.Alias != fabric.OwnerMark(spec.ID):
		it.Drift = append(it.Drift, fmt.Sprintf("not this plugin's macvlan for the network: %s, alias %q", kindName(gw.Kind), gw.Alias))
		return it
	}
	if !gw.Up {
		it.Drift = append(it.Drift, "down, want up")
	}
	if br != nil && gw.ParentIndex != br.Index {
		it.Drift = append(it.Drift, fmt.Sprintf("not on bridge %s", spec.Bridge.Name))
	}
	if want := spec.GatewayMAC(); !bytes.Equal(gw.HardwareAddr, want) {
		it.Drift = append(it.Drift, fmt.Sprintf("MAC is %s, want %s", gw.HardwareAddr, want))
	}
	if msg := h.strictRPFilter(ctx, gw.Name); msg != "" {
		it.Drift = append(it.Drift, msg)
	}
	return it
}

// checkPeers checks that each peer of the Peers option has its
// head-end replication entry (all-zero MAC) in the vxlan link's FDB.
func (h *Host) checkPeers(ctx context.Context, spec *fabric.NetworkSpec, vx *rtlink.Link) []ItemStatus {
	out := []ItemStatus{}
	if len(spec.Peers) == 0 {
		return out
	}
	have := map[string]bool{}
	var readErr error
	if vx != nil && vx.Kind == linkKindVXLAN {
		peers, err := h.vx.Peers(ctx, spec.VXLAN.Name)
		if err != nil && !errors.Is(err, rtlink.ErrNotFound) {
			readErr = err
		}
		for _, p := range peers {
			have[p.String()] = true
		}
	}
	for _, p := range spec.Peers {
		it := ItemStatus{Name: p.String(), Role: "fdb peer"}
		switch {
		case readErr != nil:
			it.Drift = append(it.Drift, fmt.Sprintf("reading the FDB of %s: %v", spec.VXLAN.Name, readErr))
		case vx == nil:
			it.Drift = append(it.Drift, fmt.Sprintf("FDB entry missing: its vxlan link %s is missing", spec.VXLAN.Name))
		case !have[p.String()]:
			it.Drift = append(it.Drift, fmt.Sprintf("FDB entry missing on %s", spec.VXLAN.Name))
		}
		out = append(out, it)
	}
	return out
}

// endpointItems checks the endpoints' host links: in bridge mode the
// host end of the veth pair, a veth and a port of the network's bridge. A
// macvlan or parent network's container link lives in the container's
// namespace once it runs, which the plugin does not enter: only listed.
func endpointItems(spec *fabric.NetworkSpec, eps []*fabric.Endpoint, byName map[string]*rtlink.Link, br *rtlink.Link) []ItemStatus {
	out := make([]ItemStatus, 0, len(eps))
	for _, ep := range eps {
		it := ItemStatus{Name: ep.ID, Role: "veth " + ep.HostIf}
		if spec.Kind != fabric.KindBridge {
			it.Role = "macvlan " + ep.ContainerIf
			it.Note = "in the container's namespace: not checked"
			out = append(out, it)
			continue
		}
		l := byName[ep.HostIf]
		switch {
		case l == nil:
			it.Drift = append(it.Drift, fmt.Sprintf("host link %s missing", ep.HostIf))
		case l.Kind != linkKindVeth:
			it.Drift = append(it.Drift, fmt.Sprintf("host link %s is %s, not a veth", ep.HostIf, kindName(l.Kind)))
		case br == nil || l.MasterIndex != br.Index:
			it.Drift = append(it.Drift, fmt.Sprintf("host link %s is not a port of %s", ep.HostIf, spec.Bridge.Name))
		case !l.Up:
			it.Drift = append(it.Drift, fmt.Sprintf("host link %s down, want up", ep.HostIf))
		}
		out = append(out, it)
	}
	return out
}
