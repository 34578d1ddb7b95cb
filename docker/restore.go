package docker

import (
	"context"
	"fmt"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
)

// RestoreReport says what Restore found.
type RestoreReport struct {
	Networks int                   // networks in the state file
	Missing  int                   // networks whose links were missing and were made again (or failed to be)
	Reaped   int                   // links the last run released and did not delete, deleted now
	Failed   []string              // networks whose links could not be brought back, with why
	Orphans  []linuxhost.OwnedLink // links made by this plugin for networks it does not know
	Cleaned  bool                  // whether the orphans were deleted
}

// Restore loads the state and reconciles it with the host: links a crash
// left half deleted are deleted, every known network's links are adopted
// where they are and made again where they are missing (after a reboot,
// say), and links this plugin made for networks it does not know are
// reported, or deleted with CleanOrphans. A state that cannot be trusted is
// an error; a network whose links cannot be made is reported and kept.
//
// Its duration and what it found are recorded in Config.Metrics.
func (d *Driver) Restore(ctx context.Context) (*RestoreReport, error) {
	start := time.Now()
	rep, err := d.restore(ctx)
	if err == nil {
		d.cfg.Metrics.observeRestore(rep, time.Since(start))
	}
	return rep, err
}

func (d *Driver) restore(ctx context.Context) (*RestoreReport, error) {
	rep := &RestoreReport{}
	var st *state
	if d.store != nil {
		var err error
		if st, err = d.store.Load(); err != nil {
			return nil, err
		}
		d.dropStale(ctx, st)
		d.adopt(st)
		if err := d.restorePools(st); err != nil {
			return nil, err
		}
	} else {
		st = &state{}
	}
	rep.Networks = len(st.Networks)
	specs := make([]*fabric.NetworkSpec, len(st.Networks))
	for i, ns := range st.Networks {
		specs[i] = d.withSwarmPeers(ns.Spec)
	}
	rec, err := d.cfg.Host.Reconcile(ctx, specs)
	if err != nil {
		return nil, err
	}
	rep.Missing, rep.Reaped = rec.Missing, rec.Reaped
	if rec.Reaped > 0 {
		d.log.Info("deleted links released before the last stop", "links", rec.Reaped)
	}
	pools := d.poolsByNetwork()
	for i, err := range rec.Failed {
		ns := st.Networks[i]
		if err != nil {
			rep.Failed = append(rep.Failed, fmt.Sprintf("%s: %v", fabric.ShortID(ns.Spec.ID), err))
			d.log.Error("network not restored", "network", fabric.ShortID(ns.Spec.ID), "error", err)
			continue
		}
		d.log.Debug("network restored", "network", fabric.ShortID(ns.Spec.ID), "kind", ns.Spec.Kind, "endpoints", len(ns.Endpoints))
		d.attachRestoredPools(ns.Spec.ID, pools[ns.Spec.ID])
	}
	d.startStoredMembership()
	if d.store == nil {
		return rep, nil // knowing no network, it calls no link an orphan
	}
	if err := d.handleOrphans(ctx, rec.Orphans, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// adopt makes the state's networks, endpoints and nodes the driver's.
func (d *Driver) adopt(st *state) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ns := range st.Networks {
		n := &network{spec: ns.Spec, endpoints: map[string]*fabric.Endpoint{}}
		for _, ep := range ns.Endpoints {
			n.endpoints[ep.ID] = ep
		}
		d.networks[ns.Spec.ID] = n
	}
	for _, node := range st.Nodes {
		d.nodes[node.Address] = node
	}
	for _, a := range st.Left {
		d.departed[a] = true
	}
	d.restoreVNIs(st.VNIs)
}

// handleOrphans reports the links this plugin made for networks it does
// not know, and deletes them if CleanOrphans says so.
func (d *Driver) handleOrphans(ctx context.Context, orphans []linuxhost.OwnedLink, rep *RestoreReport) error {
	for _, l := range orphans {
		rep.Orphans = append(rep.Orphans, l)
		if !d.cfg.CleanOrphans {
			d.log.Warn(
				"orphan link: made by this plugin for a network it does not know; left in place (the driver's CleanOrphans setting deletes such links)",
				"link",
				l.Name,
				"network",
				fabric.ShortID(l.NetworkID),
			)
			continue
		}
		if err := d.cfg.Host.DeleteOwnedLink(ctx, l); err != nil {
			return err
		}
		d.log.Warn("orphan link deleted", "link", l.Name, "network", fabric.ShortID(l.NetworkID))
	}
	rep.Cleaned = d.cfg.CleanOrphans && len(rep.Orphans) > 0
	return nil
}
