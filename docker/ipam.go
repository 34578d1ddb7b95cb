package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker/internal/store"
	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/ipam"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
)

// The driver's IPAM side: Docker's remote IPAM protocol (libnetwork's
// ipams/remote/api) over package ipam's allocator. A pool is one subnet of
// one address space; its leases are kept in the state store. A pool is
// tied to the network that dockerd creates with it (CreateNetwork's pool
// data names its address space and subnet), whose segment link then probes
// and guards the pool's addresses.

// Address spaces of the IPAM driver.
const (
	// LocalAddressSpace holds the pools of local-scope networks.
	LocalAddressSpace = "vxlan-local"
	// GlobalAddressSpace is announced because the protocol asks for one;
	// swarm networks keep Docker's own, central allocation, so its pools
	// are refused.
	GlobalAddressSpace = "vxlan-global"
)

// Option keys of RequestAddress that dockerd sets.
const (
	requestAddressType = "RequestAddressType"
	gatewayAddressType = "com.docker.network.gateway"
	macAddressOption   = "com.docker.network.endpoint.macaddress"
)

// IPAMCapabilitiesResponse answers IpamDriver.GetCapabilities.
type IPAMCapabilitiesResponse struct {
	Response
	// RequiresMACAddress makes dockerd send a container's MAC with its
	// address request, which tells a container's request from a
	// reserved (auxiliary) address and names the lease's holder.
	RequiresMACAddress bool
}

// AddressSpacesResponse answers IpamDriver.GetDefaultAddressSpaces.
type AddressSpacesResponse struct {
	Response
	LocalDefaultAddressSpace  string
	GlobalDefaultAddressSpace string
}

// RequestPoolRequest is IpamDriver.RequestPool: Pool is --subnet, SubPool
// --ip-range.
type RequestPoolRequest struct {
	AddressSpace string
	Pool         string
	SubPool      string
	Options      map[string]string
	V6           bool
}

// RequestPoolResponse answers it.
type RequestPoolResponse struct {
	Response
	PoolID string
	Pool   string
	Data   map[string]string
}

// PoolRequest names a pool: IpamDriver.ReleasePool.
type PoolRequest struct {
	PoolID string
}

// RequestAddressRequest is IpamDriver.RequestAddress: Address is the one
// asked for (--ip, --gateway, --aux-address), if any.
type RequestAddressRequest struct {
	PoolID  string
	Address string
	Options map[string]string
}

// RequestAddressResponse answers it: Address in CIDR form.
type RequestAddressResponse struct {
	Response
	Address string
	Data    map[string]string
}

// ReleaseAddressRequest is IpamDriver.ReleaseAddress.
type ReleaseAddressRequest struct {
	PoolID  string
	Address string
}

// poolRecord is a pool as the store keeps it.
type poolRecord struct {
	Subnet  netip.Prefix `json:"subnet"`
	Range   netip.Prefix `json:"range"`
	Network string       `json:"network,omitempty"` // the network created with it, once it is
}

// IPAMCapabilities answers IpamDriver.GetCapabilities.
func (d *Driver) IPAMCapabilities() IPAMCapabilitiesResponse {
	return IPAMCapabilitiesResponse{RequiresMACAddress: true}
}

// AddressSpaces answers IpamDriver.GetDefaultAddressSpaces.
func (d *Driver) AddressSpaces() AddressSpacesResponse {
	return AddressSpacesResponse{LocalDefaultAddressSpace: LocalAddressSpace, GlobalDefaultAddressSpace: GlobalAddressSpace}
}

// poolID names the pool of subnet in space: the address space and the
// subnet, "/" replaced (pool IDs are store keys).
func poolID(space string, subnet netip.Prefix) string {
	return space + ":" + strings.ReplaceAll(subnet.String(), "/", "_")
}

// RequestPool makes the pool of the user's --subnet (and --ip-range) in
// the local address space. The same subnet on every host of a segment
// gives one pool per host, which the allocator keeps apart.
func (d *Driver) RequestPool(_ context.Context, req *RequestPoolRequest) (*RequestPoolResponse, error) {
	if req.AddressSpace == GlobalAddressSpace || d.cfg.Scope == fabric.ScopeGlobal {
		return nil, errors.New("IPAM: swarm (global-scope) networks keep Docker's own address allocation: create them without --ipam-driver")
	}
	if req.AddressSpace != LocalAddressSpace {
		return nil, fmt.Errorf("IPAM: address space %q: accepted: %s", req.AddressSpace, LocalAddressSpace)
	}
	if req.Pool == "" {
		return nil, errors.New("IPAM: --subnet is required: every host of the segment must create the network with the same subnet")
	}
	subnet, err := netip.ParsePrefix(req.Pool)
	if err != nil || subnet.Addr().Zone() != "" {
		return nil, fmt.Errorf("IPAM: subnet %q: not a prefix such as 198.18.0.0/24 or fd00::/64", req.Pool)
	}
	if subnet.Addr().Is6() != req.V6 {
		return nil, fmt.Errorf("IPAM: subnet %s is not an IPv%s subnet", subnet, map[bool]string{true: "6", false: "4"}[req.V6])
	}
	subnet = subnet.Masked()
	rng := subnet
	if req.SubPool != "" {
		if rng, err = netip.ParsePrefix(req.SubPool); err != nil {
			return nil, fmt.Errorf("IPAM: ip-range %q: not a prefix inside the subnet %s", req.SubPool, subnet)
		}
		rng = rng.Masked()
	}
	id := poolID(req.AddressSpace, subnet)
	rec := &poolRecord{Subnet: subnet, Range: rng}
	d.ipamMu.Lock()
	defer d.ipamMu.Unlock()
	for oid, o := range d.pools {
		if oid != id && o.Subnet.Overlaps(subnet) {
			return nil, fmt.Errorf("IPAM: subnet %s overlaps the subnet %s of another network on this host", subnet, o.Subnet)
		}
	}
	if o := d.pools[id]; o != nil {
		// dockerd asks again for the pools of its networks when it starts
		// (and a second network may share a subnet): the same pool, with
		// its leases.
		if o.Range != rng {
			return nil, fmt.Errorf("IPAM: subnet %s is in use on this host with the ip-range %s", subnet, o.Range)
		}
		return &RequestPoolResponse{PoolID: id, Pool: subnet.String()}, nil
	}
	if err := d.addrs.Open(id, ipam.Pool{Subnet: subnet, Range: rng}, nil); err != nil {
		return nil, fmt.Errorf("IPAM: %w", err)
	}
	if err := d.persist(func(s *stateStore) error { return s.putPool(id, rec) }); err != nil {
		_ = d.addrs.Close(id)
		return nil, err
	}
	d.pools[id] = rec
	d.log.Info("address pool made", "pool", id, "range", rng)
	return &RequestPoolResponse{PoolID: id, Pool: subnet.String()}, nil
}

// ReleasePool forgets a pool and its leases, unless a network of the
// driver still uses it. An unknown pool is not an error.
func (d *Driver) ReleasePool(_ context.Context, id string) error {
	d.ipamMu.Lock()
	defer d.ipamMu.Unlock()
	rec := d.pools[id]
	if rec == nil || rec.Network != "" && d.network(rec.Network) != nil {
		return nil // unknown, or still the pool of a network (see RequestPool)
	}
	if err := d.addrs.Close(id); err != nil {
		return err
	}
	delete(d.pools, id)
	return d.persist(func(s *stateStore) error { return s.deletePool(id) })
}

// RequestAddress hands out an address of a pool: the gateway (the
// subnet's first address unless --gateway names one), an auxiliary
// address (named, never probed for), or a container's (--ip, or the next
// free one), which no other host of the segment may hold.
func (d *Driver) RequestAddress(ctx context.Context, req *RequestAddressRequest) (*RequestAddressResponse, error) {
	d.ipamMu.Lock()
	rec := d.pools[req.PoolID]
	d.ipamMu.Unlock()
	if rec == nil {
		return nil, fmt.Errorf("IPAM: pool %q: %w", req.PoolID, ipam.ErrUnknownPool)
	}
	var want netip.Addr
	if req.Address != "" {
		var err error
		if want, err = netip.ParseAddr(req.Address); err != nil {
			return nil, fmt.Errorf("IPAM: address %q: not an IP address", req.Address)
		}
	}
	var mac net.HardwareAddr
	if s := req.Options[macAddressOption]; s != "" {
		var err error
		if mac, err = net.ParseMAC(s); err != nil {
			return nil, fmt.Errorf("IPAM: option %s %q: not a MAC address", macAddressOption, s)
		}
	}
	use := ipam.UseContainer
	switch {
	case req.Options[requestAddressType] == gatewayAddressType:
		use = ipam.UseGateway
	case want.IsValid() && mac == nil:
		use = ipam.UseAux // a container's request carries its MAC
	}
	addr, err := d.addrs.Request(ctx, req.PoolID, want, use, mac)
	if err != nil {
		return nil, fmt.Errorf("IPAM: %w", err)
	}
	d.log.Debug("address handed out", "pool", req.PoolID, "address", addr, "use", use, "mac", mac.String())
	return &RequestAddressResponse{Address: netip.PrefixFrom(addr, rec.Subnet.Bits()).String()}, nil
}

// ReleaseAddress gives an address back. One not held is not an error.
func (d *Driver) ReleaseAddress(_ context.Context, req *ReleaseAddressRequest) error {
	addr, err := netip.ParseAddr(req.Address)
	if err != nil {
		if p, perr := netip.ParsePrefix(req.Address); perr == nil {
			addr, err = p.Addr(), nil
		}
	}
	if err != nil {
		return fmt.Errorf("IPAM: address %q: not an IP address", req.Address)
	}
	if err := d.addrs.Release(req.PoolID, addr); err != nil && !errors.Is(err, ipam.ErrUnknownPool) {
		return fmt.Errorf("IPAM: %w", err)
	}
	return nil
}

// network returns the network of id, or nil.
func (d *Driver) network(id string) *network {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.networks[id]
}

// poolsOf returns the IDs of the driver's pools that a network's pool data
// names, tying each to the network.
func (d *Driver) poolsOf(networkID string, data ...[]IPAMData) []string {
	d.ipamMu.Lock()
	defer d.ipamMu.Unlock()
	var ids []string
	for _, list := range data {
		for _, p := range list {
			subnet, err := netip.ParsePrefix(p.Pool)
			if err != nil {
				continue
			}
			id := poolID(p.AddressSpace, subnet.Masked())
			rec := d.pools[id]
			if rec == nil {
				continue
			}
			if rec.Network != networkID {
				rec.Network = networkID
				if err := d.persist(func(s *stateStore) error { return s.putPool(id, rec) }); err != nil {
					d.log.Warn("recording the network of an address pool", "pool", id, "error", err)
				}
			}
			ids = append(ids, id)
		}
	}
	return ids
}

// attachPools has the network's pools probed and guarded on its segment,
// once its links exist. n.mu is held.
func (d *Driver) attachPools(n *network) {
	if len(n.pools) == 0 || n.segment != nil {
		return
	}
	pools := slices.Clone(n.pools)
	g := linuxhost.Guard{
		Held: func(addr netip.Addr) (net.HardwareAddr, bool) {
			for _, id := range pools {
				if mac, ok := d.addrs.Held(id, addr); ok {
					return mac, true
				}
			}
			return nil, false
		},
		Answered: func(addr netip.Addr, mac net.HardwareAddr) {
			for _, id := range pools {
				d.addrs.Answered(id, addr, mac)
			}
		},
	}
	seg, err := d.cfg.Host.OpenSegment(n.spec, g)
	if err != nil {
		// Addresses are still handed out, unchecked: say so.
		d.log.Error("address pools of the network are not checked on its segment", "network", fabric.ShortID(n.spec.ID), "error", err)
		return
	}
	if seg == nil {
		return // a host that does not probe (tests)
	}
	n.segment = seg
	for _, id := range pools {
		if err := d.addrs.Attach(id, seg); err != nil {
			d.log.Warn("attaching an address pool to its segment", "pool", id, "error", err)
		}
	}
}

// detachPools stops probing and guarding the network's pools. n.mu is
// held.
func (d *Driver) detachPools(n *network) {
	for _, id := range n.pools {
		d.addrs.Detach(id)
	}
	if n.segment != nil {
		_ = n.segment.Close()
		n.segment = nil
	}
}

// addHostAddresses gives the host an address of its own in each of the
// network's pools that holds a gateway, when the network has an anycast
// gateway: handed out by the allocator (probed on the segment like a
// container's, held by the bridge's MAC) and put on the bridge. A pool
// that has one already (a restored network) gets none. n.mu is held.
func (d *Driver) addHostAddresses(ctx context.Context, n *network) error {
	spec := n.spec
	if !spec.AnycastGateway {
		return nil
	}
	var mac net.HardwareAddr
	if n.segment != nil {
		mac = n.segment.Identity()
	}
	for _, id := range n.pools {
		d.ipamMu.Lock()
		rec := d.pools[id]
		d.ipamMu.Unlock()
		if rec == nil || !slices.ContainsFunc(spec.Gateways, func(gw netip.Prefix) bool { return rec.Subnet.Contains(gw.Addr()) }) ||
			slices.ContainsFunc(spec.HostAddresses, func(p netip.Prefix) bool { return rec.Subnet.Contains(p.Addr()) }) {
			continue
		}
		addr, err := d.addrs.Request(ctx, id, netip.Addr{}, ipam.UseHost, mac)
		if err != nil {
			return fmt.Errorf("the host's own address on the segment, beside the anycast gateway, from pool %s: %w", rec.Subnet, err)
		}
		p := netip.PrefixFrom(addr, rec.Subnet.Bits())
		if err := d.cfg.Host.AddHostAddress(ctx, spec, p); err != nil {
			_ = d.addrs.Release(id, addr)
			return err
		}
		spec.HostAddresses = append(spec.HostAddresses, p)
		d.log.Info("host address on the segment", "network", fabric.ShortID(spec.ID), "address", p, "bridge", spec.Bridge.Name)
	}
	return nil
}

// releaseHostAddresses gives the host's own addresses of the network back
// to their pools. n.mu is held.
func (d *Driver) releaseHostAddresses(n *network) {
	for _, p := range n.spec.HostAddresses {
		for _, id := range n.pools {
			if err := d.addrs.Release(id, p.Addr()); err != nil && !errors.Is(err, ipam.ErrUnknownPool) {
				d.log.Warn("releasing the host's address on the segment", "pool", id, "address", p, "error", err)
			}
		}
	}
}

// bindEndpoint records the endpoint's MAC as the holder of its addresses.
func (d *Driver) bindEndpoint(n *network, ep *fabric.Endpoint) {
	for _, id := range n.pools {
		for _, a := range []netip.Prefix{ep.Address, ep.AddressIPv6} {
			if a.IsValid() {
				if err := d.addrs.Bind(id, a.Addr(), ep.MAC); err != nil && !errors.Is(err, ipam.ErrUnknownPool) {
					d.log.Warn("recording an endpoint's MAC with its address", "pool", id, "error", err)
				}
			}
		}
	}
}

// restorePools opens the pools and leases of the store.
func (d *Driver) restorePools(st *state) error {
	d.ipamMu.Lock()
	defer d.ipamMu.Unlock()
	for id, rec := range st.Pools {
		if err := d.addrs.Open(id, ipam.Pool{Subnet: rec.Subnet, Range: rec.Range}, st.Leases[id]); err != nil {
			return fmt.Errorf("restoring address pool %s: %w", id, err)
		}
		d.pools[id] = rec
	}
	return nil
}

// poolsByNetwork returns the IDs of the pools tied to each network,
// sorted: one pass over the pools for a whole restore.
func (d *Driver) poolsByNetwork() map[string][]string {
	d.ipamMu.Lock()
	defer d.ipamMu.Unlock()
	out := map[string][]string{}
	for id, rec := range d.pools {
		if rec.Network != "" {
			out[rec.Network] = append(out[rec.Network], id)
		}
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

// attachRestoredPools ties a restored network to its pools (ids, from
// poolsByNetwork) and has them probed and guarded on its segment.
func (d *Driver) attachRestoredPools(networkID string, ids []string) {
	n := d.network(networkID)
	if n == nil || len(ids) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pools = ids
	d.attachPools(n)
	before := len(n.spec.HostAddresses)
	err := d.addHostAddresses(context.Background(), n)
	if err == nil && len(n.spec.HostAddresses) > before {
		err = d.persist(func(s *stateStore) error { return s.putNetwork(n.spec) })
	}
	if err != nil {
		d.log.Error("the host has no address of its own on the network's segment: it cannot reach containers through the anycast gateway's subnet",
			"network", fabric.ShortID(networkID), "error", err)
	}
}

// IPAMStatus is what one address pool holds on this host.
type IPAMStatus = ipam.PoolStatus

// allPoolStatus returns the status of every pool, sorted by ID.
func (d *Driver) allPoolStatus() []IPAMStatus {
	d.ipamMu.Lock()
	ids := make([]string, 0, len(d.pools))
	for id := range d.pools {
		ids = append(ids, id)
	}
	d.ipamMu.Unlock()
	slices.Sort(ids)
	var out []IPAMStatus
	for _, id := range ids {
		if st, ok := d.addrs.Status(id); ok {
			out = append(out, st)
		}
	}
	return out
}

// leaseStore records the allocator's leases in the state store.
type leaseStore struct{ d *Driver }

// PutLease records a lease in the state store (nothing without one).
func (s leaseStore) PutLease(pool string, l ipam.Lease) error {
	return s.d.persist(func(st *stateStore) error {
		return st.update(func(tx *store.Tx) error { return tx.Put(store.Leases, store.LeaseKey(pool, l.Addr.String()), l) })
	})
}

// DeleteLease forgets a lease in the state store.
func (s leaseStore) DeleteLease(pool string, addr netip.Addr) error {
	return s.d.persist(func(st *stateStore) error {
		return st.update(func(tx *store.Tx) error { return tx.Delete(store.Leases, store.LeaseKey(pool, addr.String())) })
	})
}

// putPool records a pool.
func (s *stateStore) putPool(id string, rec *poolRecord) error {
	return s.update(func(tx *store.Tx) error { return tx.Put(store.Pools, id, rec) })
}

// deletePool removes a pool's record and its leases' (the allocator
// deletes those one by one; this catches any left).
func (s *stateStore) deletePool(id string) error {
	return s.update(func(tx *store.Tx) error {
		var keys []string
		if err := tx.ForEach(store.Leases, func(key string, _ json.RawMessage) error {
			if strings.HasPrefix(key, id+"@") {
				keys = append(keys, key)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(store.Leases, k); err != nil {
				return err
			}
		}
		return tx.Delete(store.Pools, id)
	})
}
