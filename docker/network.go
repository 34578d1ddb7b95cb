package docker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// CreateNetwork creates a network. Repeating it for a network that exists
// succeeds without changing anything. created tells whether this call made
// the network, so that undoing the call (DeleteNetwork) is right: a repeat
// must not take away the network an earlier call made.
func (d *Driver) CreateNetwork(ctx context.Context, req *CreateNetworkRequest) (created bool, err error) {
	if req.NetworkID == "" {
		return false, errors.New("no NetworkID")
	}
	opts, err := genericOptions(req.Options)
	if err != nil {
		return false, err
	}
	ipv6, _ := req.Options[optEnableIPv6].(bool)
	spec, err := d.specFor(ctx, req.NetworkID, opts, req.IPv4Data, req.IPv6Data, ipv6)
	if err != nil {
		return false, err
	}
	d.dropSelf(spec)

	d.mu.Lock()
	if _, ok := d.networks[req.NetworkID]; ok {
		d.mu.Unlock()
		return false, nil
	}
	if err := d.checkConflicts(spec); err != nil {
		d.mu.Unlock()
		return false, err
	}
	n := &network{spec: spec, endpoints: map[string]*fabric.Endpoint{}}
	n.mu.Lock()
	defer n.mu.Unlock()
	d.networks[req.NetworkID] = n
	d.mu.Unlock()

	n.pools = d.poolsOf(req.NetworkID, req.IPv4Data, req.IPv6Data)
	// With the driver's own pools, every host of the segment holds the
	// same gateway: an anycast gateway, and an address of the host's own.
	spec.AnycastGateway = spec.Kind == fabric.KindBridge && spec.HostGateway && len(n.pools) > 0
	err = d.cfg.Host.CreateNetwork(ctx, d.withSwarmPeers(spec))
	if err == nil {
		d.attachPools(n) // the links exist: probe and guard the pools on them
		err = d.addHostAddresses(ctx, n)
		if err == nil {
			err = d.persist(func(s *stateStore) error { return s.putNetwork(spec) })
		}
		if err != nil {
			// Not in the state file: a restart would not know it, so it
			// must not exist.
			d.releaseHostAddresses(n)
			d.detachPools(n)
			_ = d.cfg.Host.DeleteNetwork(context.WithoutCancel(ctx), spec, d.parentInUse(req.NetworkID, spec))
		}
	}
	if err != nil {
		n.gone = true
		d.mu.Lock()
		delete(d.networks, req.NetworkID)
		d.mu.Unlock()
		return false, err
	}
	d.log.Info(
		"network created",
		"network",
		fabric.ShortID(spec.ID),
		"vxlan",
		spec.VXLAN.Name,
		"vni",
		spec.VXLAN.VNI,
		"bridge",
		spec.Bridge.Name,
		"mtu",
		spec.ContainerMTU,
	)
	return true, nil
}

// checkConflicts refuses a spec whose link names, or VNI and port, another
// network of this driver uses; of several such networks it names the one
// of the lowest ID. One pass over the networks, no sorting: it runs on
// every CreateNetwork. d.mu is held.
func (d *Driver) checkConflicts(spec *fabric.NetworkSpec) error {
	if spec.Kind == fabric.KindParent {
		return nil // parents are shared; isolated ones are named by network ID
	}
	var found error
	foundID := ""
	for id, n := range d.networks {
		if found != nil && id > foundID {
			continue
		}
		if err := conflict(spec, id, n.spec); err != nil {
			found, foundID = err, id
		}
	}
	return found
}

// conflict says what of spec network o, of ID id, already uses.
func conflict(spec *fabric.NetworkSpec, id string, o *fabric.NetworkSpec) error {
	if o.Kind == fabric.KindParent {
		return nil
	}
	for _, c := range []struct{ opt, name, theirs string }{
		{"vxlanName", spec.VXLAN.Name, o.VXLAN.Name},
		{"bridgeName", spec.Bridge.Name, o.Bridge.Name},
	} {
		if c.name != "" && c.name == c.theirs {
			return &fabric.OptionError{Option: c.opt, Value: c.name, Problem: "already used by network " + fabric.ShortID(id)}
		}
	}
	if spec.VXLAN.VNI == o.VXLAN.VNI && spec.Port() == o.Port() {
		return &fabric.OptionError{
			Option:  "VxlanId",
			Value:   fmt.Sprint(spec.VXLAN.VNI),
			Problem: fmt.Sprintf("already used by network %s (vxlan %s)", fabric.ShortID(id), o.VXLAN.Name),
		}
	}
	return nil
}

// effectivePort is the UDP port a vxlan network's link uses.
func effectivePort(s *fabric.NetworkSpec) uint16 { return vxlan.EffectivePort(s.VXLAN.Port) }

// parentInUse reports whether a network other than id has the parent of
// spec as its parent.
func (d *Driver) parentInUse(id string, spec *fabric.NetworkSpec) bool {
	if spec.Kind != fabric.KindParent {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for oid, o := range d.networks {
		if oid != id && o.spec.Kind == fabric.KindParent && o.spec.Parent.Name == spec.Parent.Name {
			return true
		}
	}
	return false
}

// DeleteNetwork removes a network. An unknown network is not an error:
// dockerd may delete a network the plugin has already forgotten.
func (d *Driver) DeleteNetwork(ctx context.Context, id string) error {
	n, err := d.lockNetwork(id)
	if err != nil {
		d.log.Warn("delete of an unknown network", "network", fabric.ShortID(id))
		// A retry after a failed save: write the state that is now true.
		return d.persist(func(s *stateStore) error { return s.deleteNetwork(id) })
	}
	defer n.mu.Unlock()
	// dockerd deletes a network only once it holds no endpoint in it, so
	// endpoints still known here are stale (their containers went with a
	// reboot or a crash): they go with the network.
	for _, ep := range n.endpoints {
		d.log.Warn("deleting a stale endpoint with its network", "network", fabric.ShortID(id), "endpoint", fabric.ShortID(ep.ID))
		if err := d.cfg.Host.DeleteEndpoint(ctx, n.spec, ep); err != nil {
			return err
		}
		delete(n.endpoints, ep.ID)
	}
	d.detachPools(n)
	if err := d.cfg.Host.DeleteNetwork(ctx, n.spec, d.parentInUse(id, n.spec)); err != nil {
		d.attachPools(n)
		return err
	}
	d.releaseHostAddresses(n)
	n.gone = true
	d.mu.Lock()
	delete(d.networks, id)
	d.mu.Unlock()
	d.log.Info("network deleted", "network", fabric.ShortID(id))
	return d.persist(func(s *stateStore) error { return s.deleteNetwork(id) })
}

// genericOptions extracts the user's -o options from a CreateNetwork request.
func genericOptions(opts map[string]any) (map[string]string, error) {
	raw, ok := opts[optGeneric]
	if !ok || raw == nil {
		return map[string]string{}, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an object", optGeneric)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, &fabric.OptionError{Option: k, Value: fmt.Sprint(v), Problem: "not a string"}
		}
		out[k] = s
	}
	return out, nil
}

// ipamGateways reads the gateways of a network's pools (CIDR, as dockerd
// sends them in CreateNetwork).
func ipamGateways(family string, data []IPAMData) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, d := range data {
		if d.Gateway == "" {
			continue
		}
		p, err := netip.ParsePrefix(d.Gateway)
		if err != nil {
			return nil, fmt.Errorf("%s gateway %q: not an address in CIDR notation", family, d.Gateway)
		}
		out = append(out, p)
	}
	return out, nil
}

// specFor builds and checks the spec of a network from its options and
// pools (see fabric.Resolve).
func (d *Driver) specFor(
	ctx context.Context,
	id string,
	opts map[string]string,
	ipv4, ipv6 []IPAMData,
	ipv6Enabled bool,
) (*fabric.NetworkSpec, error) {
	gateways, err := ipamGateways("IPv4", ipv4)
	if err != nil {
		return nil, err
	}
	if ipv6Enabled {
		gw6, err := ipamGateways("IPv6", ipv6)
		if err != nil {
			return nil, err
		}
		gateways = append(gateways, gw6...)
	}
	return fabric.Resolve(ctx, d.cfg.Host, opts, fabric.ResolveConfig{ID: id, Scope: d.cfg.Scope, DefaultVTEP: d.vtepDevices, Gateways: gateways,
		ParentDir: d.cfg.ParentDir, ParentOwner: d.cfg.parentOwner, Logger: d.log})
}
