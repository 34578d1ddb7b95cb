package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

// globalDriver is a global-scope driver on a fake host with a store in
// dir, restored from it, as the plugin starts.
func globalDriver(t *testing.T, dir string, host *fakeHost, cfg Config) *Driver {
	t.Helper()
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Scope, cfg.Host, cfg.store = fabric.ScopeGlobal, host, st
	d, err := NewDriver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

func allocate(d *Driver, id string, opts map[string]string) (map[string]string, error) {
	return d.AllocateNetwork(context.Background(), &AllocateNetworkRequest{NetworkID: id, Options: opts,
		IPv4Data: []IPAMData{{Pool: "198.19.80.0/24", Gateway: "198.19.80.1/24"}}})
}

// The manager allocates VNIs from its range, one after the other, records
// a given VxlanId, refuses one another network holds, keeps the VNI of a
// network submitted again, frees it with FreeNetwork, and remembers it all
// across a restart.
func TestAllocateNetworkVNIs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := globalDriver(t, dir, newFakeHost(), Config{})
	want := func(id string, opts map[string]string, vni string) {
		t.Helper()
		got, err := allocate(d, id, opts)
		if err != nil || got["VxlanId"] != vni {
			t.Fatalf("allocate %s %v = %v, %v; want VxlanId=%s", id, opts, got, err, vni)
		}
	}
	refused := func(id string, opts map[string]string, says string) {
		t.Helper()
		if got, err := allocate(d, id, opts); err == nil || !strings.Contains(err.Error(), says) {
			t.Fatalf("allocate %s %v = %v, %v; want an error saying %q", id, opts, got, err, says)
		}
	}
	want("n1", nil, "1000")
	got, _ := allocate(d, "n2", map[string]string{"TTL": "32", "Peers": "198.18.0.9"})
	if fmt.Sprint(got) != "map[Peers:198.18.0.9 TTL:32 VxlanId:1001]" {
		t.Fatalf("every option the nodes need: %v", got)
	}
	refused("n3", map[string]string{"vxlanid": "1001"}, "option vxlanid=1001: VNI 1001 is already held by swarm network n2 of this driver; accepted: a VNI no other swarm network of this driver holds, or no VxlanId to have one allocated from 1000-3999")
	want("n3", map[string]string{"VxlanId": "5000"}, "5000")
	refused("n4", map[string]string{"VxlanId": "5000"}, "already held by swarm network n3")
	want("n1", map[string]string{"VxlanId": "1000"}, "1000") // submitted again after a leader change
	want("n1", nil, "1000")
	// Refused as CreateNetwork refuses them, nothing allocated.
	refused("bad", map[string]string{"TTL": "300"}, "option TTL=300: out of range; accepted: 0..255")
	refused("bad", map[string]string{"Group": "239.1.1.1"}, "option Group=239.1.1.1: a multicast group needs a VTEP device")
	refused("bad", map[string]string{"vxlanName": "x", "bridgeName": "x"}, "option bridgeName=x: same name as the vxlan interface")
	refused("bad", map[string]string{"parent": "eth0", "TTL": "3"}, "option TTL=3: not for a network of kind parent")
	if got, err := allocate(d, "p1", map[string]string{"parent": "eth0"}); err != nil || got["VxlanId"] != "" {
		t.Fatalf("parent network: %v %v", got, err)
	}
	if err := d.FreeNetwork(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	want("n5", nil, "1002") // not 1001 at once: nodes may still hold its links
	if err := d.FreeNetwork(ctx, "unknown"); err != nil {
		t.Fatal(err)
	}

	// A restart of the manager's plugin: the allocations are in the store.
	d.store.Close()
	d = globalDriver(t, dir, newFakeHost(), Config{})
	refused("n6", map[string]string{"VxlanId": "1000"}, "held by swarm network n1")
	want("n6", nil, "1003")
	want("n2", nil, "1004")
	st, err := d.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st.VNIs) != "map[n1:1000 n2:1004 n3:5000 n5:1002 n6:1003]" {
		t.Fatalf("stored: %v", st.VNIs)
	}
}

func TestAllocateNetworkRangeAndScope(t *testing.T) {
	d := globalDriver(t, t.TempDir(), newFakeHost(), Config{VNIRange: VNIRange{Low: 7, High: 8}})
	for i, want := range []string{"7", "8"} {
		if got, err := allocate(d, fmt.Sprint("n", i), nil); err != nil || got["VxlanId"] != want {
			t.Fatalf("%v %v", got, err)
		}
	}
	if _, err := allocate(d, "n9", nil); err == nil || !strings.Contains(err.Error(), "option VxlanId: missing, and every VNI of the plugin's range 7-8 is held") ||
		!strings.Contains(err.Error(), "VNI_RANGE") {
		t.Fatalf("full range: %v", err)
	}
	local, _ := NewDriver(Config{Scope: fabric.ScopeLocal, Host: newFakeHost()})
	if _, err := allocate(local, "n1", nil); err == nil || !strings.Contains(err.Error(), "scope local") {
		t.Fatalf("local scope: %v", err)
	}
	if _, err := NewDriver(Config{Scope: fabric.ScopeGlobal, Host: newFakeHost(), VNIRange: VNIRange{Low: 9, High: 8}}); err == nil {
		t.Fatal("a range with LOW > HIGH was taken")
	}
}

func TestParseVNIRange(t *testing.T) {
	for in, want := range map[string]string{"1000-3999": "1000-3999", " 1 - 16777215 ": "1-16777215", "5-5": "5-5"} {
		if r, err := ParseVNIRange(in); err != nil || r.String() != want {
			t.Errorf("%q: %v %v", in, r, err)
		}
	}
	for _, in := range []string{"", "1000", "0-10", "10-9", "1-16777216", "a-b", "-5"} {
		if r, err := ParseVNIRange(in); err == nil || !strings.Contains(err.Error(), "accepted: ") {
			t.Errorf("%q: %v %v", in, r, err)
		}
	}
}

// mustCreate creates a network with the user's options opts.
func mustCreate(t *testing.T, d *Driver, id string, opts map[string]any) {
	t.Helper()
	if err := createNet(context.Background(), d, id, opts); err != nil {
		t.Fatal(err)
	}
}

func node(addr string, self bool) NodeDiscoveryData {
	return NodeDiscoveryData{Address: addr, Self: self}
}

// Every vxlan network without Group floods to every swarm peer: the ones
// announced before and after it was made, the driver's Peers, never this
// node's own address; a node that leaves loses its entries (unless the
// network's Peers name it), and a restart brings the entries back from the
// store.
func TestSwarmPeers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	host := newFakeHost()
	d := globalDriver(t, dir, host, Config{VTEPDevice: "eth0", Peers: []netip.Addr{netip.MustParseAddr("198.18.99.1"), netip.MustParseAddr("198.18.99.4")}})
	d.DiscoverNew(ctx, node("198.18.99.1", true))
	d.DiscoverNew(ctx, node("198.18.99.2", false))
	mustCreate(t, d, "a1", map[string]any{"VxlanId": "1000", "Peers": "198.18.99.1,198.18.99.9"})
	mustCreate(t, d, "m1", map[string]any{"VxlanId": "1001", "Group": "239.1.1.1"})
	mustCreate(t, d, "p1", map[string]any{"parent": "eth0"})
	check := func(want string) {
		t.Helper()
		if got := host.peersOf("vx_a1"); got != want {
			t.Fatalf("peers of vx_a1: %s, want %s", got, want)
		}
		if got := host.peersOf("vx_m1"); got != "[]" {
			t.Fatalf("a multicast network got peers %s", got)
		}
	}
	check("[198.18.99.2 198.18.99.4 198.18.99.9]")
	d.DiscoverNew(ctx, node("198.18.99.3", false))
	check("[198.18.99.2 198.18.99.3 198.18.99.4 198.18.99.9]")
	d.DiscoverDelete(ctx, node("198.18.99.2", false))
	d.DiscoverDelete(ctx, node("198.18.99.9", false)) // the network's own Peers name it
	d.DiscoverDelete(ctx, node("198.18.99.4", false)) // the driver's Peers name it, but it left
	check("[198.18.99.3 198.18.99.9]")
	if d.networks["a1"].spec.Peers[0] != netip.MustParseAddr("198.18.99.9") || len(d.networks["a1"].spec.Peers) != 1 {
		t.Fatalf("own address kept in the network's Peers: %v", d.networks["a1"].spec.Peers)
	}
	// Created again as tasks come and go: the peers come back each time.
	if err := d.DeleteNetwork(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, d, "a1", map[string]any{"VxlanId": "1000", "Peers": "198.18.99.1,198.18.99.9"})
	check("[198.18.99.3 198.18.99.9]")

	// A restart of the plugin, a container still on a1: no announcement,
	// the peers come from the store (the entries are made again).
	if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: "a1", EndpointID: "e1", Interface: &EndpointInterface{Address: "198.19.80.5/24"}}); err != nil {
		t.Fatal(err)
	}
	d.store.Close()
	host.peers = map[string][]netip.Addr{}
	d = globalDriver(t, dir, host, Config{VTEPDevice: "eth0"})
	check("[198.18.99.3 198.18.99.9]")
	mustCreate(t, d, "b1", map[string]any{"VxlanId": "1002"})
	if got := host.peersOf("vx_b1"); got != "[198.18.99.3]" {
		t.Fatalf("network created after the restart: %s", got)
	}
	if strings.Contains(strings.Join(host.calls, " "), "198.18.99.1") {
		t.Fatalf("this node's own address reached the host: %v", host.calls)
	}
}

// The swarm recording with the user's VxlanId taken out: the manager
// allocates a VNI, and the options it answers are what every node's
// CreateNetwork receives (dockerd passes the answer on unchanged).
func TestReplaySwarmAllocated(t *testing.T) {
	var answer string
	for _, nodeName := range []string{"manager", "worker"} {
		srv, d, host := newTestServer(t, fabric.ScopeGlobal, "eth0")
		for _, f := range loadFixtures(t, "dockerd-20.10-swarm/"+nodeName) {
			body := f.body
			switch f.call {
			case "NetworkDriver.AllocateNetwork":
				body = strings.Replace(body, `{"VxlanId":"80"}`, `{}`, 1)
			case "NetworkDriver.CreateNetwork":
				body = strings.Replace(body, `{"allocated-by":"manager"}`, answer, 1)
			}
			status, got := post(t, srv, f.call, body)
			if status != 200 || strings.Contains(got, `"Err"`) {
				t.Fatalf("%s %s: %d %s", nodeName, f.file, status, got)
			}
			if f.call == "NetworkDriver.AllocateNetwork" {
				var r AllocateNetworkResponse
				if err := json.Unmarshal([]byte(got), &r); err != nil || r.Options["VxlanId"] != "1000" {
					t.Fatalf("allocation: %s %v", got, err)
				}
				b, _ := json.Marshal(r.Options)
				answer = string(b)
			}
			if f.call == "NetworkDriver.CreateNetwork" {
				for _, s := range host.networks {
					if s.VXLAN.VNI != 1000 || s.HostGateway || len(s.Peers) != 0 {
						t.Fatalf("%s %s: spec %+v", nodeName, f.file, s)
					}
				}
			}
		}
		// The last request announced the other node: it is a peer of a
		// network made now.
		mustCreate(t, d, "late", map[string]any{"VxlanId": "1001"})
		other := map[string]string{"manager": "[198.18.99.2]", "worker": "[198.18.99.1]"}[nodeName]
		if got := host.peersOf("vx_late"); got != other {
			t.Fatalf("%s: peers %s, want %s", nodeName, got, other)
		}
	}
}

// After a reboot, or a crash of dockerd, a swarm network whose containers
// are all gone is deleted at start (dockerd, which keeps no record of it,
// would never delete it); one with a live container is kept, and so is one
// that never had a container.
func TestRestoreDropsStaleSwarmNetworks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	host := newFakeHost()
	d := globalDriver(t, dir, host, Config{VTEPDevice: "eth0"})
	for i, id := range []string{"live", "dead", "empty"} {
		mustCreate(t, d, id, map[string]any{"VxlanId": fmt.Sprint(100 + i)})
	}
	for _, id := range []string{"live", "dead"} {
		if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: "ep" + id, Interface: &EndpointInterface{Address: "198.19.80.5/24"}}); err != nil {
			t.Fatal(err)
		}
	}
	d.store.Close()
	delete(host.mtu, "vhepdead") // its container died with dockerd
	d = globalDriver(t, dir, host, Config{VTEPDevice: "eth0"})
	st, err := d.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, ns := range st.Networks {
		kept = append(kept, fmt.Sprint(ns.Spec.ID, len(ns.Endpoints)))
	}
	if slices.Sort(kept); fmt.Sprint(kept) != "[empty0 live1]" {
		t.Fatalf("kept: %v", kept)
	}
	if _, ok := host.networks["dead"]; ok {
		t.Fatal("the stale network's links are still there")
	}
	// dockerd creates it again when a task lands.
	mustCreate(t, d, "dead", map[string]any{"VxlanId": "101"})
}
