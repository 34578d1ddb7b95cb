package main

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// dataUnderlay is the device of the data network in the membership test.
const dataUnderlay = "dl0"

// addDataNetwork cables ns into hub's bridge hub1 with a veth dl0
// addressed 198.18.21.n/24, and drops VXLAN (UDP 4789) on the management
// underlay ul0 both ways, so that VXLAN can only go over dl0.
func addDataNetwork(t *testing.T, hub, ns *testns.NS, n int) netip.Addr {
	t.Helper()
	port := fmt.Sprintf("dp%d", n)
	hub.IP("link", "add", port, "type", "veth", "peer", "name", dataUnderlay, "netns", ns.Name)
	hub.IP("link", "set", port, "master", "hub1", "up")
	addr := netip.AddrFrom4([4]byte{198, 18, 21, byte(n)})
	ns.IP("addr", "add", addr.String()+"/24", "dev", dataUnderlay)
	ns.IP("link", "set", dataUnderlay, "up")
	rules := "table inet dvpdrop {\n" +
		" chain in { type filter hook input priority 0; iifname \"ul0\" udp dport 4789 drop; }\n" +
		" chain out { type filter hook output priority 0; oifname \"ul0\" udp dport 4789 drop; }\n}\n"
	file := testns.WriteFile(t, fmt.Sprintf("%s/dvpdrop-%d.nft", t.TempDir(), n), rules, 0o600)
	if out, err := ns.Exec("nft", "-f", file); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	return addr
}

// A swarm whose nodes advertise on a management network and carry data on
// another, with VXLAN dropped on the management one, gets the plugin
// after it was formed, with one swarm-wide seed setting (and the key):
// the plugins find each other, a global service's tasks reach each other,
// and every FDB entry names a data-path address. A node with a wrong key
// is refused and says why, the others go on; with the right key it
// joins. A node that dies is dropped by the others, in a time measured
// beside Docker's overlay on the same hosts.
func TestIntegrationSwarmMembership(t *testing.T) {
	dockerhost.Require(t)
	start := time.Now()
	stage := func(s string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), s) }
	dir := dockerhost.BuildManagedPlugin(t, "../..")
	fab := dockerhost.NewFabric(t)
	hub := testns.New(t)
	hub.IP("link", "add", "hub1", "type", "bridge")
	hub.IP("link", "set", "hub1", "up")
	type node struct {
		*swarmNode
		data netip.Addr
	}
	var nodes []*node
	for i, name := range []string{"m1", "w1", "w2"} {
		ns, addr := fab.Add()
		n := &node{swarmNode: &swarmNode{name: name, Host: dockerhost.Start(t, ns), addr: addr}, data: addDataNetwork(t, hub, ns, i+1)}
		n.FastCleanup()
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("dockerd log of %s:\n%s", n.name, testns.Tail(n.DockerdLog(), 60))
			}
		})
		n.ImportBusybox("bb")
		nodes = append(nodes, n)
	}
	m1, w1, w2 := nodes[0], nodes[1], nodes[2]
	m1.MustDocker("swarm", "init", "--advertise-addr", m1.addr.String(), "--listen-addr", m1.addr.String()+":2377",
		"--data-path-addr", m1.data.String())
	token := m1.MustDocker("swarm", "join-token", "-q", "worker")
	for _, n := range nodes[1:] {
		n.MustDocker("swarm", "join", "--token", token, "--advertise-addr", n.addr.String(), "--listen-addr", n.addr.String()+":2377",
			"--data-path-addr", n.data.String(), m1.addr.String()+":2377")
	}
	stage("swarm of three formed, control on 198.18.20.0/24, data on 198.18.21.0/24")

	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	wrong := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	settings := func(key string) []string {
		return []string{"VTEPDEV=" + dataUnderlay, "DEBUG=true", "MEMBERSHIP_KEY=" + key, "MEMBERSHIP_SEEDS=" + m1.addr.String()}
	}
	m1.InstallPlugin(pluginName, dir, settings(key)...)
	w1.InstallPlugin(pluginName, dir, settings(key)...)
	w2.InstallPlugin(pluginName, dir, settings(wrong)...)
	stage("plugin enabled on the running swarm; w2 with a wrong key")

	eventually(t, 60*time.Second, "w2 says why it is refused", func() error {
		if !strings.Contains(w2.DockerdLog(), "no installed keys could decrypt") || !strings.Contains(w2.DockerdLog(), "same membership key") {
			return fmt.Errorf("not in its log")
		}
		return nil
	})
	t.Logf("w2: %s", grepLines(w2.DockerdLog(), "membership: cannot join"))

	m1.MustDocker("network", "create", "-d", pluginName, "--scope", "swarm", "--attachable", "--subnet", "198.19.44.0/24", "sw44")
	m1.MustDocker("service", "create", "--detach", "--name", "g44", "--mode", "global", "--endpoint-mode", "dnsrr",
		"--network", "sw44", "--no-resolve-image", "bb:latest", "sleep", "3600")
	tm, tw := taskOn(t, m1.swarmNode, "g44"), taskOn(t, w1.swarmNode, "g44")
	id := netID(t, m1.swarmNode, "sw44")
	wantPeers(t, m1.swarmNode, id, w1.data)
	wantPeers(t, w1.swarmNode, id, m1.data)
	pings(t, m1.swarmNode, tm, addrOn(t, w1.swarmNode, tw, "sw44"))
	pings(t, w1.swarmNode, tw, addrOn(t, m1.swarmNode, tm, "sw44"))
	stage("m1 and w1 flood to each other's data-path address; their tasks reach each other; w2 kept out")

	w2.MustDocker("plugin", "disable", "-f", pluginName)
	w2.MustDocker("plugin", "set", pluginName, "MEMBERSHIP_KEY="+key)
	w2.MustDocker("plugin", "enable", pluginName)
	t2 := taskOn(t, w2.swarmNode, "g44")
	a2 := addrOn(t, w2.swarmNode, t2, "sw44")
	for _, n := range nodes {
		var want []netip.Addr
		for _, o := range nodes {
			if o != n {
				want = append(want, o.data)
			}
		}
		wantPeers(t, n.swarmNode, id, want...)
	}
	pings(t, m1.swarmNode, tm, a2)
	pings(t, w2.swarmNode, t2, addrOn(t, w1.swarmNode, tw, "sw44"))
	stage("w2 with the right key joined; every node floods to the others' data-path addresses; all tasks reach each other")

	// Docker's overlay on the same hosts, for the reference: a global
	// service on an overlay network, so every node has the others' VTEPs.
	m1.MustDocker("network", "create", "-d", "overlay", "--attachable", "--subnet", "198.19.45.0/24", "ov45")
	m1.MustDocker("service", "create", "--detach", "--name", "o45", "--mode", "global", "--endpoint-mode", "dnsrr",
		"--network", "ov45", "--no-resolve-image", "bb:latest", "sleep", "3600")
	ovID := netID(t, m1.swarmNode, "ov45")
	// The overlay's namespace is a mount in dockerd's mount namespace.
	overlayFDB := func(n *node) (string, error) {
		ns := filepath.Join(filepath.Dir(n.StateDir()), "exec", "netns", "1-"+ovID[:10])
		return testns.Run("nsenter", "-t", strconv.Itoa(n.DockerdPid()), "-m", "--", "nsenter", "--net="+ns, "bridge", "fdb", "show")
	}
	overlayFloods := func(n *node, to netip.Addr) bool {
		out, _ := overlayFDB(n)
		return strings.Contains(out, "dst "+to.String()+" ")
	}
	eventually(t, 90*time.Second, "overlay's FDB on m1 and w1 names w2's data-path address", func() error {
		if !overlayFloods(m1, w2.data) || !overlayFloods(w1, w2.data) {
			out, err := overlayFDB(m1)
			return fmt.Errorf("m1: %v\n%s", err, out)
		}
		return nil
	})
	stage("overlay ov45 with a global service: its FDB names w2's data-path address")

	// w2 dies (both its links down, as a power cut looks from the others):
	// the plugin and overlay on m1 and w1 stop flooding to it.
	cut := time.Now()
	w2.NS.IP("link", "set", dockerhost.Underlay, "down")
	w2.NS.IP("link", "set", dataUnderlay, "down")
	var ours, overlay time.Duration
	for ours == 0 || overlay == 0 {
		if time.Since(cut) > 90*time.Second {
			t.Fatalf("after 90s: plugin dropped w2 after %v, overlay after %v (0: not yet)", ours, overlay)
		}
		if ours == 0 {
			pm, errm := fdbPeers(m1.swarmNode, "vx_"+id[:12])
			pw, errw := fdbPeers(w1.swarmNode, "vx_"+id[:12])
			if errm == nil && errw == nil && !slices.Contains(pm, w2.data.String()) && !slices.Contains(pw, w2.data.String()) {
				ours = time.Since(cut)
			}
		}
		if overlay == 0 && !overlayFloods(m1, w2.data) && !overlayFloods(w1, w2.data) {
			overlay = time.Since(cut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stage(fmt.Sprintf("w2 cut off: the plugin on m1 and w1 dropped it after %.1fs, Docker's overlay after %.1fs", ours.Seconds(), overlay.Seconds()))
	wantPeers(t, m1.swarmNode, id, w1.data)
	wantPeers(t, w1.swarmNode, id, m1.data)
	pings(t, m1.swarmNode, tm, addrOn(t, w1.swarmNode, tw, "sw44"))
}
