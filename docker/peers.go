package docker

import (
	"context"
	"net/netip"
	"slices"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

// Swarm peers: every vxlan network of this driver without a multicast
// Group floods by unicast (head-end replication FDB entries) to the VTEPs
// of the swarm's other nodes, the ones dockerd announces (DiscoverNew,
// DiscoverDelete, kept in the store across restarts), the members of the
// plugins' own membership (membership.go) and the driver's Config.Peers,
// never to this node's own addresses (swarmPeers). A network's own Peers
// option adds to them.

// floodsToSwarmPeers reports whether a network gets the swarm's peers as
// head-end replication entries: one with a vxlan link that floods by
// unicast (no multicast Group).
func floodsToSwarmPeers(spec *fabric.NetworkSpec) bool {
	return spec.Kind != fabric.KindParent && !spec.VXLAN.Group.IsValid() && spec.ControlPlane == fabric.ControlPlaneNone
}

// vxlanNetworks lists the IDs of the networks that flood to the swarm's
// peers. d.mu is held.
func (d *Driver) vxlanNetworks() []string {
	var ids []string
	for id, n := range d.networks {
		if floodsToSwarmPeers(n.spec) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// changePeer adds or removes peer on network id's vxlan link, where the
// network floods by unicast, the peer is of its underlay's family, and (on
// removal) the network's own Peers option does not name it.
func (d *Driver) changePeer(ctx context.Context, id string, peer netip.Addr, add bool) {
	n, err := d.lockNetwork(id)
	if err != nil {
		return // deleted meanwhile
	}
	defer n.mu.Unlock()
	spec := n.spec
	if !floodsToSwarmPeers(spec) || peer.Is6() != spec.UnderlayIPv6() || (!add && slices.Contains(spec.Peers, peer)) {
		return
	}
	op, change := "peer added", d.cfg.Host.AddPeer
	if !add {
		op, change = "peer removed", d.cfg.Host.RemovePeer
	}
	if err := change(ctx, spec, peer); err != nil {
		d.log.Error(op+": failed", "network", fabric.ShortID(id), "vxlan", spec.VXLAN.Name, "peer", peer, "error", err)
		return
	}
	d.log.Info(op, "network", fabric.ShortID(id), "vxlan", spec.VXLAN.Name, "peer", peer)
}

// selfAddrs returns this node's own addresses, as its Self announcement
// gave them. d.mu is held.
func (d *Driver) selfAddrs() []netip.Addr {
	var out []netip.Addr
	for _, n := range d.nodes {
		if !n.Self {
			continue
		}
		for _, s := range []string{n.Address, n.BindAddress} {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, a.Unmap())
			}
		}
	}
	return out
}

// dropSelf removes this node's own addresses from the network's Peers.
func (d *Driver) dropSelf(spec *fabric.NetworkSpec) {
	d.mu.Lock()
	self := d.selfAddrs()
	d.mu.Unlock()
	spec.Peers = slices.DeleteFunc(slices.Clone(spec.Peers), func(p netip.Addr) bool { return slices.Contains(self, p) })
}

// swarmPeers returns the VTEPs of the swarm's other nodes, sorted: the
// driver's Peers that did not leave, the nodes dockerd announced (at the
// data-path address a member with that advertise address gave, if one
// did), and the members whose advertise address dockerd did not say left;
// never this node's own addresses. d.mu is held.
func (d *Driver) swarmPeers() []netip.Addr {
	self := d.selfAddrs()
	var out []netip.Addr
	add := func(a netip.Addr) {
		if !slices.Contains(self, a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, p := range d.cfg.Peers {
		if !d.departed[p.String()] {
			add(p)
		}
	}
	for _, n := range d.nodes {
		a, err := netip.ParseAddr(n.Address)
		if err != nil || n.Self {
			continue
		}
		a = a.Unmap()
		if data, ok := d.dataOf[a]; ok {
			a = data
		}
		add(a)
	}
	for _, m := range d.members {
		if !d.departed[m.advertise.String()] {
			add(m.data)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// applyPeers brings the networks nets from the swarm peers before to the
// swarm peers after: it adds the new ones and removes the gone ones (see
// changePeer). d.peerMu is held.
func (d *Driver) applyPeers(ctx context.Context, nets []string, before, after []netip.Addr) {
	for _, p := range before {
		if !slices.Contains(after, p) {
			for _, id := range nets {
				d.changePeer(ctx, id, p, false)
			}
		}
	}
	for _, p := range after {
		if !slices.Contains(before, p) {
			for _, id := range nets {
				d.changePeer(ctx, id, p, true)
			}
		}
	}
}

// changeSwarm applies change (made with d.mu held) to what the swarm's
// peers are made from, then brings every network's peers along.
func (d *Driver) changeSwarm(ctx context.Context, change func()) {
	d.peerMu.Lock()
	defer d.peerMu.Unlock()
	d.mu.Lock()
	before := d.swarmPeers()
	change()
	after := d.swarmPeers()
	nets := d.vxlanNetworks()
	d.mu.Unlock()
	d.applyPeers(ctx, nets, before, after)
}

// withSwarmPeers returns the spec the host makes: spec with, for a vxlan
// network without Group, the swarm's peers of its underlay family added to
// its Peers, and this node's own addresses taken out.
func (d *Driver) withSwarmPeers(spec *fabric.NetworkSpec) *fabric.NetworkSpec {
	if !floodsToSwarmPeers(spec) {
		return spec
	}
	d.mu.Lock()
	self := d.selfAddrs()
	candidates := d.swarmPeers()
	d.mu.Unlock()
	out := *spec
	out.Peers = nil
	for _, p := range append(slices.Clone(spec.Peers), candidates...) {
		if !slices.Contains(self, p) && !slices.Contains(out.Peers, p) && p.Is6() == spec.UnderlayIPv6() {
			out.Peers = append(out.Peers, p)
		}
	}
	return &out
}
