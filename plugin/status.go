package plugin

import (
	"context"
	"fmt"
	"sort"
	"strings"
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
	Networks []NetworkStatus `json:"networks"`
	// Nodes are the swarm nodes dockerd announced (global scope), sorted by
	// address.
	Nodes []NodeDiscoveryData `json:"nodes"`
}

// NetworkStatus is one network as the state knows it and as the kernel has
// it. Every item with a non-empty Drift differs from what was asked.
type NetworkStatus struct {
	// ID is dockerd's network ID.
	ID string `json:"id"`
	// Kind is how the network attaches containers.
	Kind NetworkKind `json:"kind"`
	// VNI is the vxlan network identifier (not for parent networks).
	VNI uint32 `json:"vni,omitempty"`
	// Links are the network's own links: vxlan link, bridge, or parent.
	Links []ItemStatus `json:"links"`
	// Peers are the remote VTEPs of the Peers option, each an FDB entry
	// of the vxlan link.
	Peers []ItemStatus `json:"peers"`
	// Endpoints are the network's containers' attachments, sorted by ID.
	Endpoints []ItemStatus `json:"endpoints"`
}

// ItemStatus is one checked item: a link, a peer or an endpoint.
type ItemStatus struct {
	// Name is the link's name, the peer's address or the endpoint's ID.
	Name string `json:"name"`
	// Role says what the item is to the network: "vxlan", "bridge",
	// "parent", "fdb peer", or an endpoint's link ("veth vhXXX").
	Role string `json:"role"`
	// Drift lists how the kernel differs from what the state asks, one
	// sentence each ("link missing", "TTL is 64, want 32"); empty when it
	// is as asked.
	Drift []string `json:"drift,omitempty"`
	// Note says what was not checked, and why.
	Note string `json:"note,omitempty"`
}

// Drifted reports whether any item of the report differs from the state.
func (r *StatusReport) Drifted() bool {
	return r.DriftCount() > 0
}

// DriftCount counts the items of the report that differ from the state.
func (r *StatusReport) DriftCount() int {
	n := 0
	for _, ns := range r.Networks {
		for _, items := range [][]ItemStatus{ns.Links, ns.Peers, ns.Endpoints} {
			for _, it := range items {
				if len(it.Drift) > 0 {
					n++
				}
			}
		}
	}
	return n
}

// CheckState checks every network of st against host, changing nothing,
// and returns the report, with source as its Source.
func CheckState(ctx context.Context, host Host, st *State, source string) *StatusReport {
	rep := &StatusReport{Source: source, Networks: []NetworkStatus{}, Nodes: append([]NodeDiscoveryData{}, st.Nodes...)}
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
	d.mu.Unlock()
	sort.Strings(ids)
	rep := &StatusReport{Source: "plugin", Networks: []NetworkStatus{}}
	for _, id := range ids {
		n, err := d.lockNetwork(id)
		if err != nil {
			continue // deleted since the listing
		}
		eps := make([]*Endpoint, 0, len(n.endpoints))
		for _, ep := range n.endpoints {
			eps = append(eps, ep)
		}
		one := CheckState(ctx, d.cfg.Host, &State{Networks: []*NetworkState{{Spec: n.spec, Endpoints: eps}}}, "plugin")
		n.mu.Unlock()
		rep.Networks = append(rep.Networks, one.Networks...)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Address < nodes[j].Address })
	rep.Nodes = nodes
	return rep
}

// Err is nil when the network is as its state asks, and otherwise an
// error naming every item that differs and how: the answer of a check that
// fails, such as the CNI plugin's CHECK.
func (s NetworkStatus) Err() error {
	var parts []string
	for _, items := range [][]ItemStatus{s.Links, s.Peers, s.Endpoints} {
		for _, it := range items {
			if len(it.Drift) > 0 {
				parts = append(parts, fmt.Sprintf("%s %s: %s", it.Role, it.Name, strings.Join(it.Drift, ", ")))
			}
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("network %s: %s", shortID(s.ID), strings.Join(parts, "; "))
}
