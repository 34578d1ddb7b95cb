package docker

import (
	"context"
	"errors"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// dropStale removes from st, from the store and from the host the
// bridge-mode networks of a global-scope driver that dockerd no longer
// knows. dockerd keeps no record of a swarm network on a node across its
// own restart (it creates the network again when a task lands there), so
// after a crash of dockerd, or a reboot, the networks the plugin restores
// would never be deleted. Such a network is recognised by its endpoints:
// an endpoint whose host-side veth is gone is a container that is gone,
// and a swarm network that had endpoints and has none left is one dockerd
// will create again when it needs it. A network that had no endpoint is
// kept (dockerd may hold it between CreateNetwork and CreateEndpoint), and
// so are networks of the other kinds (a container's macvlan link lives in
// its namespace, out of sight).
func (d *Driver) dropStale(ctx context.Context, st *state) {
	if d.cfg.Scope != fabric.ScopeGlobal {
		return
	}
	kept := st.Networks[:0]
	for _, ns := range st.Networks {
		if ns.Spec.Kind != fabric.KindBridge || len(ns.Endpoints) == 0 {
			kept = append(kept, ns)
			continue
		}
		live := ns.Endpoints[:0]
		for _, ep := range ns.Endpoints {
			if _, err := d.cfg.Host.LinkMTU(ctx, ep.HostIf); errors.Is(err, vxlan.ErrNotFound) {
				d.log.Info(
					"endpoint gone while the plugin was down: forgotten",
					"network",
					fabric.ShortID(ns.Spec.ID),
					"endpoint",
					fabric.ShortID(ep.ID),
					"interface",
					ep.HostIf,
				)
				if err := d.persist(func(s *stateStore) error { return s.deleteEndpoint(ns.Spec.ID, ep.ID) }); err != nil {
					d.log.Error("saving state", "error", err)
				}
				continue
			}
			live = append(live, ep)
		}
		ns.Endpoints = live
		if len(live) > 0 {
			kept = append(kept, ns)
			continue
		}
		if err := d.cfg.Host.DeleteNetwork(ctx, ns.Spec, false); err != nil {
			d.log.Error("stale swarm network not deleted", "network", fabric.ShortID(ns.Spec.ID), "error", err)
			kept = append(kept, ns)
			continue
		}
		if err := d.persist(func(s *stateStore) error { return s.deleteNetwork(ns.Spec.ID) }); err != nil {
			d.log.Error("saving state", "error", err)
		}
		d.log.Info(
			"swarm network without endpoints deleted at start: dockerd creates it again when a task needs it",
			"network",
			fabric.ShortID(ns.Spec.ID),
		)
	}
	st.Networks = kept
}
