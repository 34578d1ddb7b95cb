package plugin

import "context"

// DiscoverNew records a swarm node dockerd announces.
func (d *Driver) DiscoverNew(_ context.Context, node NodeDiscoveryData) {
	d.mu.Lock()
	d.nodes[node.Address] = node
	d.mu.Unlock()
	d.log.Info("node discovered", "address", node.Address, "self", node.Self)
	if err := d.persist(func(s *Store) error { return s.putNode(node) }); err != nil {
		d.log.Error("saving state", "error", err)
	}
}

// DiscoverDelete forgets a swarm node.
func (d *Driver) DiscoverDelete(_ context.Context, node NodeDiscoveryData) {
	d.mu.Lock()
	delete(d.nodes, node.Address)
	d.mu.Unlock()
	d.log.Info("node left", "address", node.Address)
	if err := d.persist(func(s *Store) error { return s.deleteNode(node.Address) }); err != nil {
		d.log.Error("saving state", "error", err)
	}
}
