package plugin

import (
	"context"
	"slices"
)

// DiscoverNew records a swarm node dockerd announces. This node's own
// announcement (Self) carries its data-path address, which is then never
// used as a peer; another node's carries the address it advertised to the
// swarm, which every vxlan network of this driver gets as a peer.
func (d *Driver) DiscoverNew(ctx context.Context, node NodeDiscoveryData) {
	d.mu.Lock()
	d.nodes[node.Address] = node
	nets := d.vxlanNetworks()
	d.mu.Unlock()
	d.log.Info("node discovered", "address", node.Address, "self", node.Self)
	if err := d.persist(func(s *Store) error { return s.putNode(node) }); err != nil {
		d.log.Error("saving state", "error", err)
	}
	addr, ok := d.nodeAddr(node)
	if !ok {
		return
	}
	for _, id := range nets {
		if node.Self {
			d.changePeer(ctx, id, addr, false)
		} else {
			d.changePeer(ctx, id, addr, true)
		}
	}
}

// DiscoverDelete forgets a swarm node that left: its FDB entries go from
// every network, unless the network's Peers option or the driver's Peers
// name it.
func (d *Driver) DiscoverDelete(ctx context.Context, node NodeDiscoveryData) {
	d.mu.Lock()
	delete(d.nodes, node.Address)
	nets := d.vxlanNetworks()
	d.mu.Unlock()
	d.log.Info("node left", "address", node.Address)
	if err := d.persist(func(s *Store) error { return s.deleteNode(node.Address) }); err != nil {
		d.log.Error("saving state", "error", err)
	}
	addr, ok := d.nodeAddr(node)
	if !ok || node.Self || slices.Contains(d.cfg.Peers, addr) {
		return
	}
	for _, id := range nets {
		d.changePeer(ctx, id, addr, false)
	}
}
