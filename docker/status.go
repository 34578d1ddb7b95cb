package docker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker/internal/store"
	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
)

// StatusCall is the plugin-private call that answers a StatusReport: a POST
// to /Plugin.Status on the plugin's socket, with an empty body. dockerd
// never makes it; `docker-vxlan-plugin status` does.
const StatusCall = "Plugin.Status"

// StatusReport is what the plugin holds, each item checked against the
// kernel: its networks with their links, FDB peers and endpoints, and the
// swarm nodes it was told of.
type StatusReport struct {
	// Source says where the networks were read: "plugin", the running
	// plugin's memory, or "store", the state store read with no plugin
	// running.
	Source string `json:"source"`
	// StateDir is the state directory read, when Source is "store".
	StateDir string `json:"stateDir,omitempty"`
	// Networks are sorted by ID.
	Networks []linuxhost.NetworkStatus `json:"networks"`
	// Nodes are the swarm nodes dockerd announced (global scope), sorted by
	// address.
	Nodes []NodeDiscoveryData `json:"nodes"`
	// Pools are the IPAM driver's address pools on this host, sorted by ID,
	// with their leases and the conflicts seen (an address handed out here
	// that another host of the segment answers for: drift). Only a running
	// plugin knows the conflicts and the addresses held ready.
	Pools []IPAMStatus `json:"pools,omitempty"`
	// Members are the other nodes of the plugins' own membership, alive,
	// sorted by name; none when it does not run (or with no plugin
	// running).
	Members []MemberStatus `json:"members,omitempty"`
}

// MemberStatus is another node of the plugins' own membership.
type MemberStatus struct {
	// Name is its memberlist name: its advertise address and port.
	Name string `json:"name"`
	// Advertise is the address its membership is bound to.
	Advertise string `json:"advertise"`
	// DataPath is its data-path address: the VTEP flooded to.
	DataPath string `json:"data_path"`
	// Departed is true when dockerd said the node left: it is not flooded
	// to, though a member.
	Departed bool `json:"departed,omitempty"`
}

// Drifted reports whether any item of the report differs from the state.
func (r *StatusReport) Drifted() bool {
	return r.DriftCount() > 0
}

// DriftCount counts the items of the report that differ from the state.
func (r *StatusReport) DriftCount() int {
	n := 0
	for _, p := range r.Pools {
		n += len(p.Conflicts)
	}
	for _, ns := range r.Networks {
		for _, items := range [][]linuxhost.ItemStatus{ns.Links, ns.Peers, ns.Endpoints} {
			for _, it := range items {
				if len(it.Drift) > 0 {
					n++
				}
			}
		}
		if ns.Filter != nil && len(ns.Filter.Drift) > 0 {
			n++
		}
	}
	return n
}

// checkState checks every network of st against host, changing nothing,
// and returns the report, with source as its Source.
func checkState(ctx context.Context, host Host, st *state, source string) *StatusReport {
	rep := &StatusReport{Source: source, Networks: []linuxhost.NetworkStatus{}, Nodes: append([]NodeDiscoveryData{}, st.Nodes...)}
	for _, ns := range st.Networks {
		s := host.CheckNetwork(ctx, ns.Spec, ns.Endpoints)
		sort.Slice(s.Endpoints, func(i, j int) bool { return s.Endpoints[i].Name < s.Endpoints[j].Name })
		rep.Networks = append(rep.Networks, s)
	}
	sort.Slice(rep.Networks, func(i, j int) bool { return rep.Networks[i].ID < rep.Networks[j].ID })
	sort.Slice(rep.Nodes, func(i, j int) bool { return rep.Nodes[i].Address < rep.Nodes[j].Address })
	return rep
}

// census is what the driver holds, counted, with what the kernel counts
// for its networks: the one source of the numbers the status report and
// the metrics give.
type census struct {
	// Networks are sorted by ID.
	Networks []networkCensus
	// Nodes counts the swarm nodes dockerd announced; NodeList has them,
	// sorted by address.
	Nodes    int
	NodeList []NodeDiscoveryData
	// VNIsAllocated counts the VNIs of the range this manager allocated;
	// VNIsFree those left.
	VNIsAllocated, VNIsFree int
	// Counters are the kernel's counters of each network's vxlan link, by
	// network ID; FilterDrops the VTEP filter's drops, if the host has one.
	Counters    map[string]*linuxhost.NetworkCounters
	FilterDrops map[string]uint64
	// Released counts the links waiting for the background deletion; -1
	// when the host does not say.
	Released int
	// ReadErr is why the kernel's counters are missing, if they are.
	ReadErr error
}

// networkCensus is one network: its spec and its number of endpoints.
type networkCensus struct {
	Spec      *fabric.NetworkSpec
	Endpoints int
}

// census counts what the driver holds and, with kernel, reads the
// kernel's counters of its networks: two dumps whatever their number (see
// linuxhost.Host.Counters). Each network's lock is held only to read its
// spec and count its endpoints.
func (d *Driver) census(ctx context.Context, kernel bool) *census {
	d.mu.Lock()
	nets := make([]*network, 0, len(d.networks))
	for _, n := range d.networks {
		nets = append(nets, n)
	}
	c := &census{Nodes: len(d.nodes), NodeList: make([]NodeDiscoveryData, 0, len(d.nodes)), Released: -1}
	for _, n := range d.nodes {
		c.NodeList = append(c.NodeList, n)
	}
	for _, vni := range d.vnis {
		if d.vniRange.contains(vni) {
			c.VNIsAllocated++
		}
	}
	c.VNIsFree = int(d.vniRange.High-d.vniRange.Low+1) - c.VNIsAllocated
	d.mu.Unlock()
	sort.Slice(c.NodeList, func(i, j int) bool { return c.NodeList[i].Address < c.NodeList[j].Address })
	c.Networks = make([]networkCensus, 0, len(nets))
	for _, n := range nets {
		n.mu.Lock()
		if !n.gone {
			c.Networks = append(c.Networks, networkCensus{Spec: n.spec, Endpoints: len(n.endpoints)})
		}
		n.mu.Unlock()
	}
	sort.Slice(c.Networks, func(i, j int) bool { return c.Networks[i].Spec.ID < c.Networks[j].Spec.ID })
	if !kernel {
		return c
	}
	hc, ok := d.cfg.Host.(hostCounters)
	if !ok {
		return c
	}
	c.Released = hc.Released()
	specs := make([]*fabric.NetworkSpec, len(c.Networks))
	for i, n := range c.Networks {
		specs[i] = n.Spec
	}
	c.Counters, c.ReadErr = hc.Counters(ctx, specs)
	if f, ok := d.cfg.Host.(FilterDropReader); ok && c.ReadErr == nil {
		c.FilterDrops, c.ReadErr = f.FilterDrops(ctx, specs)
	}
	return c
}

// memberStatus lists the other nodes of the plugins' own membership,
// sorted by name.
func (d *Driver) memberStatus() []MemberStatus {
	d.mu.Lock()
	var members []MemberStatus
	for name, m := range d.members {
		members = append(members, MemberStatus{Name: name, Advertise: m.advertise.String(), DataPath: m.data.String(),
			Departed: d.departed[m.advertise.String()]})
	}
	d.mu.Unlock()
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	return members
}

// Status checks what the driver holds against the host. Each network is
// checked with its lock held, so a call on it waits for its check (a few
// link reads) and the check never sees half of a call. The networks, the
// nodes and the kernel's counters are the census's, as the metrics read
// them.
func (d *Driver) Status(ctx context.Context) *StatusReport {
	cen := d.census(ctx, true)
	rep := &StatusReport{Source: "plugin", Networks: []linuxhost.NetworkStatus{}, Nodes: cen.NodeList, Members: d.memberStatus()}
	for _, nc := range cen.Networks {
		n, err := d.lockNetwork(nc.Spec.ID)
		if err != nil {
			continue // deleted since the census
		}
		eps := make([]*fabric.Endpoint, 0, len(n.endpoints))
		for _, ep := range n.endpoints {
			eps = append(eps, ep)
		}
		one := checkState(ctx, d.cfg.Host, &state{Networks: []*networkState{{Spec: n.spec, Endpoints: eps}}}, "plugin")
		n.mu.Unlock()
		for i := range one.Networks {
			one.Networks[i].Counters = cen.Counters[nc.Spec.ID]
		}
		rep.Networks = append(rep.Networks, one.Networks...)
	}
	rep.Pools = d.allPoolStatus()
	return rep
}

// StateFileName is the file of the state store in the state directory.
const StateFileName = store.FileName

// ReadStatus reads the state store of dir, with no plugin running (a
// running plugin holds it locked: ask it with StatusCall instead), and
// checks it against host, changing nothing. The store is closed before
// the kernel is read, so that a plugin starting meanwhile waits for it
// only as long as the reading takes. A directory without a store holds no
// networks: the report is empty, and nothing is created.
func ReadStatus(ctx context.Context, dir string, host Host) (*StatusReport, error) {
	st := &state{}
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err == nil {
		s, err := openStore(dir)
		if err != nil {
			return nil, err
		}
		st, err = s.Load()
		s.Close()
		if err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	rep := checkState(ctx, host, st, "store")
	for id, rec := range st.Pools {
		p := IPAMStatus{ID: id, Subnet: rec.Subnet.String(), Leases: st.Leases[id]}
		sort.Slice(p.Leases, func(i, j int) bool { return p.Leases[i].Addr.Less(p.Leases[j].Addr) })
		rep.Pools = append(rep.Pools, p)
	}
	sort.Slice(rep.Pools, func(i, j int) bool { return rep.Pools[i].ID < rep.Pools[j].ID })
	if hc, ok := host.(hostCounters); ok {
		specs := make([]*fabric.NetworkSpec, len(st.Networks))
		for i, ns := range st.Networks {
			specs[i] = ns.Spec
		}
		if counters, err := hc.Counters(ctx, specs); err == nil { // what could not be read is left out, as by the metrics
			for i := range rep.Networks {
				rep.Networks[i].Counters = counters[rep.Networks[i].ID]
			}
		}
	}
	rep.StateDir = dir
	return rep, nil
}
