package plugin

import (
	"context"
	"fmt"
)

// RestoreReport says what Restore found.
type RestoreReport struct {
	Networks int         // networks in the state file
	Failed   []string    // networks whose links could not be brought back, with why
	Orphans  []OwnedLink // links made by this plugin for networks it does not know
	Cleaned  bool        // whether the orphans were deleted
}

// Restore loads the state file and reconciles it with the host: every
// known network's links are adopted where they are and made again where
// they are missing (after a reboot, say), and links this plugin made for
// networks it does not know are reported, or deleted with CleanOrphans. A
// state file that cannot be trusted is an error; a network whose links
// cannot be made is reported and kept.
func (d *Driver) Restore(ctx context.Context) (*RestoreReport, error) {
	rep := &RestoreReport{}
	if d.cfg.Store == nil {
		return rep, nil
	}
	st, err := d.cfg.Store.Load()
	if err != nil {
		return nil, err
	}
	d.dropStale(ctx, st)
	rep.Networks = len(st.Networks)
	d.mu.Lock()
	for _, ns := range st.Networks {
		n := &network{spec: ns.Spec, endpoints: map[string]*Endpoint{}}
		for _, ep := range ns.Endpoints {
			n.endpoints[ep.ID] = ep
		}
		d.networks[ns.Spec.ID] = n
	}
	for _, node := range st.Nodes {
		d.nodes[node.Address] = node
	}
	d.restoreVNIs(st.VNIs)
	d.mu.Unlock()
	for _, ns := range st.Networks {
		if err := d.cfg.Host.CreateNetwork(ctx, d.withSwarmPeers(ns.Spec)); err != nil {
			rep.Failed = append(rep.Failed, fmt.Sprintf("%s: %v", shortID(ns.Spec.ID), err))
			d.log.Error("network not restored", "network", shortID(ns.Spec.ID), "error", err)
			continue
		}
		d.log.Info("network restored", "network", shortID(ns.Spec.ID), "kind", ns.Spec.Kind, "endpoints", len(ns.Endpoints))
	}
	owned, err := d.cfg.Host.OwnedLinks(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range owned {
		d.mu.Lock()
		_, known := d.networks[l.NetworkID]
		d.mu.Unlock()
		if known {
			continue
		}
		rep.Orphans = append(rep.Orphans, l)
		if d.cfg.CleanOrphans {
			if err := d.cfg.Host.DeleteOwnedLink(ctx, l); err != nil {
				return nil, err
			}
			d.log.Warn("orphan link deleted", "link", l.Name, "network", shortID(l.NetworkID))
		} else {
			d.log.Warn("orphan link: made by this plugin for a network it does not know; left in place (the driver's CleanOrphans setting deletes such links)", "link", l.Name, "network", shortID(l.NetworkID))
		}
	}
	rep.Cleaned = d.cfg.CleanOrphans && len(rep.Orphans) > 0
	return rep, nil
}
