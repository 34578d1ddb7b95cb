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
// joins. docker run --rm on a worker is timed beside Docker's overlay on
// the same hosts, and is not slower (within benchTolerance). A node that
// dies is dropped by the others, in a time measured beside overlay.
func TestIntegrationSwarmMembership(t *testing.T) {
	stage, dir, fab := swarmSetup(t)
	hub := testns.New(t)
	hub.IP("link", "add", "hub1", "type", "bridge")
	hub.IP("link", "set", "hub1", "up")
	type node struct {
		*swarmNode
		data netip.Addr
	}
	var nodes []*node
	for i, name := range []string{"m1", "w1", "w2", "w3"} {
		ns, addr := fab.Add()
		data := addDataNetwork(t, hub, ns, i+1)
		nodes = append(nodes, &node{swarmNode: startSwarmNode(t, name, ns, addr), data: data})
	}
	m1, w1, w2, w3 := nodes[0], nodes[1], nodes[2], nodes[3]
	m1.MustDocker("swarm", "init", "--advertise-addr", m1.addr.String(), "--listen-addr", m1.addr.String()+":2377",
		"--data-path-addr", m1.data.String())
	token := m1.MustDocker("swarm", "join-token", "-q", "worker")
	for _, n := range nodes[1:] {
		n.MustDocker("swarm", "join", "--token", token, "--advertise-addr", n.addr.String(), "--listen-addr", n.addr.String()+":2377",
			"--data-path-addr", n.data.String(), m1.addr.String()+":2377")
	}
	stage("swarm of four formed, control on 198.18.20.0/24, data on 198.18.21.0/24")

	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	wrong := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	settings := func(key string) []string {
		return []string{"VTEPDEV=" + dataUnderlay, "DEBUG=true", "MEMBERSHIP_KEY=" + key, "MEMBERSHIP_SEEDS=" + m1.addr.String()}
	}
	for _, n := range []*node{m1, w1, w3} {
		n.InstallPlugin(pluginName, dir, settings(key)...)
	}
	w2.InstallPlugin(pluginName, dir, settings(wrong)...)
	stage("plugin enabled on the running swarm; w2 with a wrong key")

	eventually(t, 60*time.Second, "w2 says why it is refused", func() error {
		if !strings.Contains(w2.DockerdLog(), "no installed keys could decrypt") || !strings.Contains(w2.DockerdLog(), "same membership key") {
			return fmt.Errorf("not in its log")
		}
		return nil
	})
	t.Logf("w2: %s", grepLines(w2.DockerdLog(), "membership: cannot join"))

	// peersAmong waits until each of set floods to the data-path
	// addresses of the others of set, and only to them.
	var id string
	peersAmong := func(set ...*node) {
		t.Helper()
		for _, n := range set {
			var want []netip.Addr
			for _, o := range set {
				if o != n {
					want = append(want, o.data)
				}
			}
			wantPeers(t, n.swarmNode, id, want...)
		}
	}
	m1.MustDocker("network", "create", "-d", pluginName, "--scope", "swarm", "--attachable", "--subnet", "198.19.44.0/24", "sw44")
	m1.MustDocker("service", "create", "--detach", "--name", "g44", "--mode", "global", "--endpoint-mode", "dnsrr",
		"--network", "sw44", "--no-resolve-image", "bb:latest", "sleep", "3600")
	tasks := map[*node]string{}
	for _, n := range []*node{m1, w1, w3} {
		tasks[n] = taskOn(t, n.swarmNode, "g44")
	}
	id = netID(t, m1.swarmNode, "sw44")
	peersAmong(m1, w1, w3)
	pings(t, m1.swarmNode, tasks[m1], addrOn(t, w1.swarmNode, tasks[w1], "sw44"))
	pings(t, w1.swarmNode, tasks[w1], addrOn(t, w3.swarmNode, tasks[w3], "sw44"))
	pings(t, w3.swarmNode, tasks[w3], addrOn(t, m1.swarmNode, tasks[m1], "sw44"))
	stage("m1, w1 and w3 flood to each other's data-path addresses; their tasks reach each other; w2 kept out")

	w2.MustDocker("plugin", "disable", "-f", pluginName)
	w2.MustDocker("plugin", "set", pluginName, "MEMBERSHIP_KEY="+key)
	w2.MustDocker("plugin", "enable", pluginName)
	tasks[w2] = taskOn(t, w2.swarmNode, "g44")
	peersAmong(nodes...)
	pings(t, m1.swarmNode, tasks[m1], addrOn(t, w2.swarmNode, tasks[w2], "sw44"))
	pings(t, w2.swarmNode, tasks[w2], addrOn(t, w3.swarmNode, tasks[w3], "sw44"))
	stage("w2 with the right key joined; every node floods to the others' data-path addresses; the tasks reach each other")

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
	eventually(t, 90*time.Second, "overlay's FDB names every other node's data-path address", func() error {
		for _, n := range nodes {
			for _, o := range nodes {
				if o != n && !overlayFloods(n, o.data) {
					out, err := overlayFDB(n)
					return fmt.Errorf("%s to %s: %v\n%s", n.name, o.name, err, out)
				}
			}
		}
		return nil
	})
	stage("overlay ov45 with a global service: its FDBs name the data-path addresses")

	// Beside overlay, one run: docker run --rm on a worker, w1, on a
	// network it holds already (the global services' tasks run there),
	// interleaved; then on networks it does not hold, which it makes for
	// the container and deletes after it; and a global service's tasks
	// running on all four nodes.
	byUs, byOverlay := runBench(t, w1.swarmNode, "sw44", "ov45", benchPairs, nil)
	stage(fmt.Sprintf("benchmark, docker run --rm on w1, network held: ours %s; overlay %s; ours−overlay per pair p50 %v",
		benchSummary(byUs), benchSummary(byOverlay), p50(pairDiffs(byUs, byOverlay))))
	notSlower(t, "docker run --rm on w1, network held", byUs, byOverlay)
	m1.MustDocker("network", "create", "-d", pluginName, "--scope", "swarm", "--attachable", "--subnet", "198.19.46.0/24", "sw46")
	m1.MustDocker("network", "create", "-d", "overlay", "--attachable", "--subnet", "198.19.47.0/24", "ov47")
	byUs, byOverlay = runBench(t, w1.swarmNode, "sw46", "ov47", benchFreshPairs, func(net string) {
		// Each run begins on a w1 without the network.
		testns.Eventually(t, 30*time.Second, 100*time.Millisecond, net+" deleted on w1", func() error {
			if _, err := w1.Docker("network", "inspect", net); err == nil {
				return fmt.Errorf("w1 still holds it")
			}
			return nil
		})
	})
	stage(fmt.Sprintf("benchmark, docker run --rm on w1, network made and deleted: ours %s; overlay %s; ours−overlay per pair p50 %v",
		benchSummary(byUs), benchSummary(byOverlay), p50(pairDiffs(byUs, byOverlay))))
	notSlower(t, "docker run --rm on w1, network made and deleted", byUs, byOverlay)
	for _, net := range []string{"sw44", "ov45"} {
		t0 := time.Now()
		m1.MustDocker("service", "create", "--detach", "--name", "b"+net, "--mode", "global", "--endpoint-mode", "dnsrr",
			"--network", net, "--no-resolve-image", "bb:latest", "sleep", "3600")
		eventually(t, 90*time.Second, "global service on "+net, func() error {
			out, err := m1.Docker("service", "ls", "--filter", "name=b"+net, "--format", "{{.Replicas}}")
			if err != nil || out != "4/4" {
				return fmt.Errorf("replicas %q (%v)", out, err)
			}
			return nil
		})
		up := time.Since(t0)
		m1.MustDocker("service", "rm", "b"+net)
		stage(fmt.Sprintf("benchmark %s: a global service's 4 tasks running after %v", net, up.Round(100*time.Millisecond)))
	}

	// dropped measures, from now, how long until no node of watchers
	// floods to gone: the plugin's network, and overlay's if withOverlay.
	dropped := func(watchers []*node, gone *node, withOverlay bool) (ours, overlay time.Duration) {
		t.Helper()
		start := time.Now()
		for ours == 0 || (withOverlay && overlay == 0) {
			if time.Since(start) > 90*time.Second {
				t.Fatalf("after 90s, %s not dropped: by the plugin after %v, by overlay after %v (0: not yet)", gone.name, ours, overlay)
			}
			pluginDone, overlayDone := true, true
			for _, n := range watchers {
				if ps, err := fdbPeers(n.swarmNode, "vx_"+id[:12]); err != nil || slices.Contains(ps, gone.data.String()) {
					pluginDone = false
				}
				if withOverlay && overlayFloods(n, gone.data) {
					overlayDone = false
				}
			}
			if ours == 0 && pluginDone {
				ours = time.Since(start)
			}
			if withOverlay && overlay == 0 && overlayDone {
				overlay = time.Since(start)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return ours, overlay
	}

	// w3 dies (both its links down, as a power cut looks from the others).
	w3.NS.IP("link", "set", dockerhost.Underlay, "down")
	w3.NS.IP("link", "set", dataUnderlay, "down")
	ours, overlay := dropped([]*node{m1, w1, w2}, w3, true)
	stage(fmt.Sprintf("w3 cut off: dropped by the plugin on m1, w1 and w2 after %.1fs, by Docker's overlay after %.1fs",
		ours.Seconds(), overlay.Seconds()))
	peersAmong(m1, w1, w2)

	// w2's dockerd is killed; its plugin runs on, still a member: dockerd's
	// announcement that the node left drops it.
	w2.KillDockerd()
	ours, overlay = dropped([]*node{m1, w1}, w2, true)
	stage(fmt.Sprintf("w2's dockerd killed: dropped by the plugin on m1 and w1 after %.1fs, by Docker's overlay after %.1fs",
		ours.Seconds(), overlay.Seconds()))
	peersAmong(m1, w1)
	pings(t, m1.swarmNode, tasks[m1], addrOn(t, w1.swarmNode, tasks[w1], "sw44"))

	// w1 leaves the swarm; its plugin stays a member: dropped by m1.
	w1.MustDocker("swarm", "leave", "--force")
	ours, _ = dropped([]*node{m1}, w1, false)
	stage(fmt.Sprintf("w1 left the swarm: dropped by the plugin on m1 after %.1fs", ours.Seconds()))
	wantPeers(t, m1.swarmNode, id)
}

// The benchmark's pairs of runs (see runBench): on a network the worker
// holds, and on one it makes for the container.
const (
	benchPairs      = 8
	benchFreshPairs = 5
)

// runBench times `docker run --rm --network NET bb true` on n for the
// networks ours and overlay, interleaved: one warm-up run of each, not
// counted, then pairs whose order alternates (ours first, overlay first,
// ...), so that a change in the machine's load over the runs falls on both
// alike. before, if not nil, runs before each run, outside its time.
func runBench(t *testing.T, n *swarmNode, ours, overlay string, pairs int, before func(net string)) (o, v []time.Duration) {
	t.Helper()
	run := func(net string) time.Duration {
		t.Helper()
		if before != nil {
			before(net)
		}
		t0 := time.Now()
		n.MustDocker("run", "--rm", "--network", net, "bb", "true")
		return time.Since(t0)
	}
	run(ours)
	run(overlay)
	for i := range pairs {
		if i%2 == 0 {
			o = append(o, run(ours))
			v = append(v, run(overlay))
		} else {
			v = append(v, run(overlay))
			o = append(o, run(ours))
		}
	}
	return o, v
}

// benchSummary gives the median of ds and their spread: the quartiles
// and the extremes, to the millisecond.
func benchSummary(ds []time.Duration) string {
	s := slices.Sorted(slices.Values(ds))
	at := func(q float64) time.Duration { return s[int(q*float64(len(s)-1)+0.5)].Round(time.Millisecond) }
	return fmt.Sprintf("p50 %v (p25 %v, p75 %v, min %v, max %v, n %d)", p50(s), at(0.25), at(0.75), at(0), at(1), len(s))
}

// benchTolerance is how much the plugin's p50 may exceed overlay's in
// the benchmark before the test fails: room for the runs' noise. On a
// 2-core VM shared with other test runs, the plugin's p50 over overlay's
// was 0.84 to 0.98 in 16 benchmarks of 8 pairs on a held network (p50s
// from 1.1 s to 2.4 s, some with busy loops beside them), and 0.39 to
// 0.52 in 12 benchmarks of 5 pairs on a network made and deleted.
const benchTolerance = 1.10

// notSlower fails the test when the p50 of ours (the plugin's runs)
// exceeds that of overlay by more than benchTolerance.
func notSlower(t *testing.T, what string, ours, overlay []time.Duration) {
	t.Helper()
	if r := float64(p50(ours)) / float64(p50(overlay)); r > benchTolerance {
		t.Errorf("%s: ours p50 %v is %.2f× overlay's %v, over the tolerance %.2f×", what, p50(ours), r, p50(overlay), benchTolerance)
	}
}

// pairDiffs returns a[i]−b[i] for each pair of runs.
func pairDiffs(a, b []time.Duration) []time.Duration {
	out := make([]time.Duration, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}
