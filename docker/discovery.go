package docker

import (
	"context"
	"net/netip"
)

// DiscoverNew records a swarm node dockerd announces. This node's own
// announcement (Self) carries its data-path address (Address) and the
// address it reaches the swarm from (BindAddress): the membership, when
// configured, starts there, telling the others the data-path address.
// Another node's carries the address it advertised to the swarm, which
// every vxlan network of this driver gets as a peer, or the data-path
// address the membership learnt for that node (see swarmPeers); the
// membership also tries to join it there.
func (d *Driver) DiscoverNew(ctx context.Context, node NodeDiscoveryData) {
	d.changeSwarm(ctx, func() {
		d.nodes[node.Address] = node
		delete(d.departed, node.Address)
	})
	d.log.Info("node discovered", "address", node.Address, "self", node.Self)
	if err := d.persist(func(s *stateStore) error { return s.putNode(node) }); err != nil {
		d.log.Error("saving state", "error", err)
	}
	if node.Self {
		d.startSelfMembership(node)
	} else if ml := d.currentMembership(); ml != nil {
		go d.joinMissing(ml, map[string]bool{})
	}
}

// startSelfMembership starts the membership from this node's own
// announcement: bound to its BindAddress (or Address, without one),
// gossiping its Address as the data-path address.
func (d *Driver) startSelfMembership(node NodeDiscoveryData) {
	data, err := netip.ParseAddr(node.Address)
	if err != nil {
		return
	}
	bind, err := netip.ParseAddr(node.BindAddress)
	if err != nil {
		bind = data
	}
	d.startMembership(bind.Unmap(), data.Unmap())
}

// startStoredMembership starts the membership from this node's own
// announcement as the store kept it, before dockerd announces it again.
func (d *Driver) startStoredMembership() {
	d.mu.Lock()
	var self *NodeDiscoveryData
	for _, n := range d.nodes {
		if n.Self {
			self = &n
		}
	}
	d.mu.Unlock()
	if self != nil {
		d.startSelfMembership(*self)
	}
}

// DiscoverDelete forgets a swarm node that left: its FDB entries go from
// every network whose own Peers option does not name it, even if the
// driver's Peers name it or the membership still has it (they are not used
// for it again until dockerd announces it again, also after a restart:
// the store records that it left).
func (d *Driver) DiscoverDelete(ctx context.Context, node NodeDiscoveryData) {
	d.changeSwarm(ctx, func() {
		delete(d.nodes, node.Address)
		if !node.Self {
			d.departed[node.Address] = true
		}
	})
	d.log.Info("node left", "address", node.Address)
	if err := d.persist(func(s *stateStore) error { return s.deleteNode(node) }); err != nil {
		d.log.Error("saving state", "error", err)
	}
}
