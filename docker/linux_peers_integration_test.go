package docker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// fdbPeers lists the remotes of a vxlan link's all-zero FDB entries, as
// `bridge -j fdb show` reports them.
func fdbPeers(t *testing.T, ns interface {
	Exec(string, ...string) (string, error)
}, dev string) []string {
	t.Helper()
	out, err := ns.Exec("bridge", "-j", "fdb", "show", "dev", dev)
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		Mac string `json:"mac"`
		Dst string `json:"dst"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var peers []string
	for _, e := range entries {
		if e.Mac == "00:00:00:00:00:00" {
			peers = append(peers, e.Dst)
		}
	}
	slices.Sort(peers)
	return peers
}

// Swarm peers on real links: a node announced before a network is made,
// and one after, get head-end replication entries, read back from the
// kernel; this node's own address never does; a node that leaves loses
// its entry; and a VNI the kernel refuses names the link that holds it.
func TestIntegrationLinuxHostSwarmPeers(t *testing.T) {
	ctx := context.Background()
	d, ns := liveDriver(t, fabric.ScopeGlobal)
	d.DiscoverNew(ctx, NodeDiscoveryData{Address: "198.18.4.1", BindAddress: "198.18.4.1", Self: true})
	d.DiscoverNew(ctx, NodeDiscoveryData{Address: "198.18.4.2"})
	if err := createNet(ctx, d, "sw1", map[string]any{"VxlanId": "1000", "Peers": "198.18.4.1"}); err != nil {
		t.Fatal(err)
	}
	if got := fdbPeers(t, ns, "vx_sw1"); !slices.Equal(got, []string{"198.18.4.2"}) {
		t.Fatalf("peers %v, want [198.18.4.2]", got)
	}
	d.DiscoverNew(ctx, NodeDiscoveryData{Address: "198.18.4.3"})
	if got := fdbPeers(t, ns, "vx_sw1"); !slices.Equal(got, []string{"198.18.4.2", "198.18.4.3"}) {
		t.Fatalf("peers %v after a join", got)
	}
	d.DiscoverDelete(ctx, NodeDiscoveryData{Address: "198.18.4.2"})
	if got := fdbPeers(t, ns, "vx_sw1"); !slices.Equal(got, []string{"198.18.4.3"}) {
		t.Fatalf("peers %v after a leave", got)
	}

	// A link of someone else's (as overlay's ingress) holds VNI 4096.
	ns.IP("link", "add", "ingressvx", "type", "vxlan", "id", "4096", "dstport", "4789", "dev", "ul0")
	err := createNet(ctx, d, "sw2", map[string]any{"VxlanId": "4096"})
	var conflict *vxlan.VNIConflictError
	if !errors.As(err, &conflict) || conflict.Other != "ingressvx" ||
		!containsAll(err.Error(), "option VxlanId=4096", "vxlan ingressvx", "A VXLAN device with the specified VNI already exists") {
		t.Fatalf("VNI collision: %v", err)
	}
	if _, err := ns.TryIP("link", "show", "vx_sw2"); err == nil {
		t.Fatal("the refused network left its link")
	}
	if err := d.DeleteNetwork(ctx, "sw1"); err != nil {
		t.Fatal(err)
	}
	d.DiscoverDelete(ctx, NodeDiscoveryData{Address: "198.18.4.3"}) // its network is gone: nothing to do
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
