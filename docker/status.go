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
	// Networks are sorted by ID.
	Networks []linuxhost.NetworkStatus `json:"networks"`
	// Nodes are the swarm nodes dockerd announced (global scope), sorted by
	// address.
	Nodes []NodeDiscoveryData `json:"nodes"`
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
	for _, ns := range r.Networks {
		for _, items := range [][]linuxhost.ItemStatus{ns.Links, ns.Peers, ns.Endpoints} {
			for _, it := range items {
				if len(it.Drift) > 0 {
					n++
				}
			}
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

// Status checks what the driver holds against the host. Each network is
// checked with its lock held, so a call on it waits for its check (a few
// link reads) and the check never sees half of a call.
func (d *Driver) Status(ctx context.Context) *StatusReport {
	d.mu.Lock()
	ids := make([]string, 0, len(d.networks))
	for id := range d.networks {
		ids = append(ids, id)
	}
	nodes := make([]NodeDiscoveryData, 0, len(d.nodes))
	for _, n := range d.nodes {
		nodes = append(nodes, n)
	}
	var members []MemberStatus
	for name, m := range d.members {
		members = append(members, MemberStatus{Name: name, Advertise: m.advertise.String(), DataPath: m.data.String(),
			Departed: d.departed[m.advertise.String()]})
	}
	d.mu.Unlock()
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	sort.Strings(ids)
	rep := &StatusReport{Source: "plugin", Networks: []linuxhost.NetworkStatus{}}
	for _, id := range ids {
		n, err := d.lockNetwork(id)
		if err != nil {
			continue // deleted since the listing
		}
		eps := make([]*fabric.Endpoint, 0, len(n.endpoints))
		for _, ep := range n.endpoints {
			eps = append(eps, ep)
		}
		one := checkState(ctx, d.cfg.Host, &state{Networks: []*networkState{{Spec: n.spec, Endpoints: eps}}}, "plugin")
		n.mu.Unlock()
		rep.Networks = append(rep.Networks, one.Networks...)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Address < nodes[j].Address })
	rep.Nodes, rep.Members = nodes, members
	return rep
}

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
	return checkState(ctx, host, st, "store"), nil
}
