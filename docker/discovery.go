package docker

import "context"

// DiscoverNew records a swarm node dockerd announces. This node's own
// announcement (Self) carries its data-path address, which is then never
// used as a peer; another node's carries the address it advertised to the
// swarm, which every vxlan network of this driver gets as a peer.
func (d *Driver) DiscoverNew(ctx context.Context, node NodeDiscoveryData) {
	d.mu.Lock()
	d.nodes[node.Address] = node
	delete(d.departed, node.Address)
	nets := d.vxlanNetworks()
	d.mu.Unlock()
	d.log.Info("node discovered", "address", node.Address, "self", node.Self)
	if err := d.persist(func(s *stateStore) error { return s.putNode(node) }); err != nil {
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
// every network whose own Peers option does not name it, even if the
// driver's Peers name it (they are not used for it again until it joins
// again or the plugin restarts).
func (d *Driver) DiscoverDelete(ctx context.Context, node NodeDiscoveryData) {
	d.mu.Lock()
	delete(d.nodes, node.Address)
	if !node.Self {
		d.departed[node.Address] = true
	}
	nets := d.vxlanNetworks()
	d.mu.Unlock()
	d.log.Info("node left", "address", node.Address)
	if err := d.persist(func(s *stateStore) error { return s.deleteNode(node.Address) }); err != nil {
		d.log.Error("saving state", "error", err)
	}
	addr, ok := d.nodeAddr(node)
	if !ok || node.Self {
		return
	}
	for _, id := range nets {
		d.changePeer(ctx, id, addr, false)
	}
}
