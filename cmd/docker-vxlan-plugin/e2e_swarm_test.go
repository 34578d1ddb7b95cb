package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// pluginName is the managed plugin's name in the swarm tests.
const pluginName = "dvp:test"

// The managed plugin, built from this checkout with the repository's
// script, installs on one engine with docker plugin create / set / enable,
// reports what its settings say, and keeps its state on the host mount
// across disable / enable.
func TestIntegrationManagedPluginInstall(t *testing.T) {
	dockerhost.Require(t)
	dir := dockerhost.BuildManagedPlugin(t, "../..")
	fab := dockerhost.NewFabric(t)
	ns, _ := fab.Add()
	h := dockerhost.Start(t, ns)
	h.InstallPlugin(pluginName, dir, "VTEPDEV="+dockerhost.Underlay, "DEBUG=true", "SCOPE=local")
	if out := h.MustDocker("plugin", "inspect", pluginName, "--format", "{{.Enabled}} {{.Config.Interface.Socket}} {{.Config.Linux.Capabilities}} {{.Config.Network.Type}}"); out != "true vxlan.sock [CAP_NET_ADMIN] host" {
		t.Fatalf("plugin: %s", out)
	}
	// The plugin's process has CAP_NET_ADMIN (bit 12) on top of what
	// Docker gives every container (0xa80425fb with dockerd 20.10), and
	// not CAP_SYS_ADMIN (bit 21): it needs no other namespace than the
	// host's network namespace it runs in.
	var caps []string
	for _, pid := range h.ShimChildren() {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "CapEff:") && strings.Contains(string(cmd), "docker-vxlan-plugin") {
				caps = append(caps, strings.TrimSpace(strings.TrimPrefix(line, "CapEff:")))
			}
		}
	}
	if len(caps) != 1 {
		t.Fatalf("plugin processes' capabilities: %v", caps)
	}
	eff, err := strconv.ParseUint(caps[0], 16, 64)
	if err != nil || eff&(1<<12) == 0 || eff&(1<<21) != 0 {
		t.Fatalf("the plugin's effective capabilities %s: want CAP_NET_ADMIN, not CAP_SYS_ADMIN", caps[0])
	}
	t.Logf("the plugin's effective capabilities: %#x", eff)
	h.ImportBusybox("bb")
	h.MustDocker("network", "create", "-d", pluginName, "--subnet", "198.19.30.0/24", "--gateway", "198.19.30.1", "-o", "VxlanId=30", "n30")
	h.MustDocker("run", "-d", "--name", "c1", "--net", "n30", "--ip", "198.19.30.11", "bb", "sleep", "600")
	if err := h.NS.Ping(mustAddr("198.19.30.11"), 2); err != nil {
		t.Fatalf("host to container through the gateway: %v\n%s", err, h.DockerdLog())
	}
	h.MustDocker("plugin", "disable", "-f", pluginName)
	h.MustDocker("plugin", "enable", pluginName)
	if !strings.Contains(h.DockerdLog(), "state restored") || !strings.Contains(h.DockerdLog(), "networks=1") {
		t.Fatalf("state not restored from the host mount:\n%s", h.DockerdLog())
	}
	// The offline upgrade of docs/managed-plugin.md: removed and created again under the
	// same name, the plugin finds its network in the state on the host and
	// serves a new container on it.
	h.MustDocker("plugin", "disable", "-f", pluginName)
	h.MustDocker("plugin", "rm", "-f", pluginName)
	h.InstallPlugin(pluginName, dir, "VTEPDEV="+dockerhost.Underlay, "DEBUG=true", "SCOPE=local")
	if n := strings.Count(h.DockerdLog(), "networks=1"); n != 2 {
		t.Fatalf("state not restored after the upgrade (%d):\n%s", n, h.DockerdLog())
	}
	h.MustDocker("run", "-d", "--name", "c2", "--net", "n30", "--ip", "198.19.30.12", "bb", "sleep", "600")
	pingsIn(t, h, "c2", "198.19.30.11")
	h.MustDocker("rm", "-f", "c2")
	h.MustDocker("rm", "-f", "c1")

	// The managed plugin as IPAM driver too: its network gets the anycast
	// gateway, whose bridge settings it makes over netlink (its /proc/sys
	// is read-only); the container sees the gateway at the network's MAC
	// and the host reaches it from an address of its own.
	h.MustDocker("network", "create", "-d", pluginName, "--ipam-driver", pluginName, "--subnet", "198.19.31.0/24", "-o", "VxlanId=31", "n31")
	h.MustDocker("run", "-d", "--name", "c3", "--net", "n31", "bb", "sleep", "600")
	pingsIn(t, h, "c3", "198.19.31.1")
	gwMAC := (&fabric.NetworkSpec{VXLAN: vxlan.Config{VNI: 31}}).GatewayMAC().String()
	if out, err := h.Docker("exec", "c3", "ip", "-4", "neigh", "show", "198.19.31.1"); err != nil || !strings.Contains(out, "lladdr "+gwMAC) {
		t.Fatalf("the container has the gateway at %q (%v), want the anycast MAC %s", out, err, gwMAC)
	}
	id31 := strings.TrimSpace(h.MustDocker("network", "inspect", "-f", "{{.Id}}", "n31"))
	if v, err := h.NS.Exec("sysctl", "-n", "net.ipv4.conf."+fabric.BridgeLinkName(id31)+".arp_ignore"); err != nil || strings.TrimSpace(v) != "1" {
		t.Fatalf("arp_ignore of the bridge: %q (%v), want 1", v, err)
	}
	c3 := strings.TrimSpace(h.MustDocker("inspect", "-f", "{{.NetworkSettings.Networks.n31.IPAddress}}", "c3"))
	if err := h.NS.Ping(mustAddr(c3), 2); err != nil {
		t.Fatalf("host to container %s from its own address: %v\n%s", c3, err, h.NS.IP("addr"))
	}
	h.MustDocker("rm", "-f", "c3")
	h.RemoveNetwork("n31")
	h.RemoveNetwork("n30")
	if left := ownedLinks(t, h); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}

// swarmNode is one engine of the swarm test.
type swarmNode struct {
	name string
	*dockerhost.Host
	addr netip.Addr
}

// swarmSetup begins a swarm test: it needs dockerd, builds the managed
// plugin from this checkout into dir and makes the underlay fab; stage
// logs a step with the time since the start.
func swarmSetup(t *testing.T) (stage func(string), dir string, fab *dockerhost.Fabric) {
	t.Helper()
	dockerhost.Require(t)
	start := time.Now()
	stage = func(s string) {
		t.Helper()
		t.Logf("%6.1fs %s", time.Since(start).Seconds(), s)
	}
	return stage, dockerhost.BuildManagedPlugin(t, "../.."), dockerhost.NewFabric(t)
}

// startSwarmNode starts an engine called name in ns, which has addr on
// the underlay, with busybox imported as bb; its dockerd log is shown if
// the test fails.
func startSwarmNode(t *testing.T, name string, ns *testns.NS, addr netip.Addr) *swarmNode {
	t.Helper()
	n := &swarmNode{name: name, Host: dockerhost.Start(t, ns), addr: addr}
	n.FastCleanup()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dockerd log of %s:\n%s", n.name, testns.Tail(n.DockerdLog(), 80))
		}
	})
	n.ImportBusybox("bb")
	return n
}

// eventually retries check every half second for up to limit.
func eventually(t *testing.T, limit time.Duration, what string, check func() error) {
	t.Helper()
	testns.Eventually(t, limit, 500*time.Millisecond, what, check)
}

// taskOn returns the container of service svc on node n, waiting for it.
func taskOn(t *testing.T, n *swarmNode, svc string) string {
	t.Helper()
	var id string
	eventually(t, 90*time.Second, "task of "+svc+" on "+n.name, func() error {
		out, err := n.Docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name="+svc)
		if err != nil || out == "" {
			return fmt.Errorf("none running (%v)", err)
		}
		id = strings.Fields(out)[0]
		return nil
	})
	return id
}

// addrOn returns the address of container c on network net.
func addrOn(t *testing.T, n *swarmNode, c, net string) string {
	t.Helper()
	return n.MustDocker("inspect", "-f", `{{(index .NetworkSettings.Networks "`+net+`").IPAddress}}`, c)
}

// pings makes container c on n ping addr.
func pings(t *testing.T, n *swarmNode, c, addr string) {
	t.Helper()
	pingsIn(t, n.Host, c, addr)
}

// pingsIn makes container c on h ping addr.
func pingsIn(t *testing.T, n *dockerhost.Host, c, addr string) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("ping %s from %s", addr, c), func() error {
		out, err := n.Docker("exec", c, "ping", "-c", "2", "-W", "2", addr)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

// netID returns a network's full ID as node n knows it.
func netID(t *testing.T, n *swarmNode, net string) string {
	t.Helper()
	return n.MustDocker("network", "inspect", "-f", "{{.ID}}", net)
}

// vniOn returns the VNI of the network's vxlan link on n, read from the
// kernel.
func vniOn(t *testing.T, n *swarmNode, id string) int {
	t.Helper()
	l := n.NS.LinkJSON("vx_" + id[:12])
	vni, _ := l.Linkinfo.InfoData["id"].(float64)
	return int(vni)
}

// fdbPeers returns the head-end replication remotes of a vxlan link on n.
func fdbPeers(n *swarmNode, dev string) ([]string, error) {
	out, err := n.NS.Exec("bridge", "-j", "fdb", "show", "dev", dev)
	if err != nil {
		return nil, err
	}
	var entries []struct {
		Mac string `json:"mac"`
		Dst string `json:"dst"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		return nil, err
	}
	var peers []string
	for _, e := range entries {
		if e.Mac == "00:00:00:00:00:00" && e.Dst != "" {
			peers = append(peers, e.Dst)
		}
	}
	slices.Sort(peers)
	return peers, nil
}

// wantPeers waits until the vxlan link of network id on n floods to
// exactly want.
func wantPeers(t *testing.T, n *swarmNode, id string, want ...netip.Addr) {
	t.Helper()
	var ws []string
	for _, a := range want {
		ws = append(ws, a.String())
	}
	slices.Sort(ws)
	eventually(t, 30*time.Second, "FDB peers on "+n.name, func() error {
		got, err := fdbPeers(n, "vx_"+id[:12])
		if err != nil || !slices.Equal(got, ws) {
			return fmt.Errorf("peers %v (%v), want %v", got, err, ws)
		}
		return nil
	})
}

// A swarm of namespaced engines with the managed plugin built from this
// checkout on each: a global network without VxlanId and without Group
// gets a VNI from the manager, outside the overlay's range that swarm's
// ingress uses, and carries traffic between a service's tasks on both
// nodes and a plain container, by unicast flooding to the peers dockerd
// announced.
func TestIntegrationSwarm(t *testing.T) {
	stage, dir, fab := swarmSetup(t)
	newNode := func(name string) *swarmNode {
		ns, addr := fab.Add()
		return startSwarmNode(t, name, ns, addr)
	}
	install := func(n *swarmNode, settings ...string) {
		n.InstallPlugin(pluginName, dir, append([]string{"VTEPDEV=" + dockerhost.Underlay, "DEBUG=true"}, settings...)...)
	}
	m1, w1 := newNode("m1"), newNode("w1")
	nodes := []*swarmNode{m1, w1}
	install(m1)
	install(w1)
	workerToken, _ := m1.SwarmInit(m1.addr)
	w1.SwarmJoin(workerToken, m1.addr, w1.addr)
	stage("swarm of two, plugin on both")

	// Swarm's own ingress network, as Docker makes it: an overlay VNI
	// from 4096 up.
	ingress := m1.MustDocker("network", "inspect", "ingress", "-f", `{{.Driver}} {{index .Options "com.docker.network.driver.overlay.vxlanid_list"}}`)
	if !strings.HasPrefix(ingress, "overlay 4") {
		t.Fatalf("ingress: %s", ingress)
	}
	ingressVNI := strings.Fields(ingress)[1]

	m1.MustDocker("network", "create", "-d", pluginName, "--scope", "swarm", "--attachable", "--subnet", "198.19.40.0/24", "--gateway", "198.19.40.1", "sw40")
	m1.MustDocker("service", "create", "--detach", "--name", "s40", "--replicas", "2", "--replicas-max-per-node", "1", "--endpoint-mode", "dnsrr",
		"--network", "sw40", "--no-resolve-image", "bb:latest", "sleep", "3600")
	tm, tw := taskOn(t, m1, "s40"), taskOn(t, w1, "s40")
	stage("service s40 on both nodes")
	am, aw := addrOn(t, m1, tm, "sw40"), addrOn(t, w1, tw, "sw40")
	pings(t, m1, tm, aw)
	pings(t, w1, tw, am)
	m1.MustDocker("run", "-d", "--name", "c40", "--network", "sw40", "bb", "sleep", "3600")
	pings(t, m1, "c40", am)
	pings(t, m1, "c40", aw)
	stage("tasks and a plain container reach each other across nodes")

	id40 := netID(t, m1, "sw40")
	vni40 := vniOn(t, m1, id40)
	if vni40 < 1000 || vni40 > 3999 || vniOn(t, w1, id40) != vni40 {
		t.Fatalf("VNI %d on m1, %d on w1: want one VNI of 1000-3999", vni40, vniOn(t, w1, id40))
	}
	wantPeers(t, m1, id40, w1.addr)
	wantPeers(t, w1, id40, m1.addr)

	// A third node joins, as a manager, before its plugin is enabled:
	// dockerd announces it to the others, but not them to it, so its
	// plugin gets them from the PEERS setting (its own address in the list
	// is skipped).
	m2 := newNode("m2")
	nodes = append(nodes, m2)
	managerToken := m1.MustDocker("swarm", "join-token", "-q", "manager")
	m2.SwarmJoin(managerToken, m1.addr, m2.addr)
	install(m2, "PEERS="+m1.addr.String()+","+w1.addr.String()+","+m2.addr.String())
	m1.MustDocker("service", "scale", "--detach", "s40=3")
	t2 := taskOn(t, m2, "s40")
	a2 := addrOn(t, m2, t2, "sw40")
	pings(t, m1, "c40", a2)
	pings(t, w1, tw, a2)
	pings(t, m2, t2, aw)
	wantPeers(t, m1, id40, w1.addr, m2.addr)
	wantPeers(t, w1, id40, m1.addr, m2.addr)
	wantPeers(t, m2, id40, m1.addr, w1.addr)
	wantAdmitted(t, m1.NS, uint32(vni40), w1.addr, m2.addr)
	wantAdmitted(t, w1.NS, uint32(vni40), m1.addr, m2.addr)
	wantAdmitted(t, m2.NS, uint32(vni40), m1.addr, w1.addr)
	stage("third node joined; its task reachable; every node's VTEP filter admits it")

	// The worker's plugin restarts; a network made afterwards reaches its
	// peers, which no one announces again: they come from its state.
	w1.MustDocker("plugin", "disable", "-f", pluginName)
	w1.MustDocker("plugin", "enable", pluginName)
	m1.MustDocker("network", "create", "-d", pluginName, "--scope", "swarm", "--attachable", "--subnet", "198.19.41.0/24", "sw41")
	for _, n := range nodes {
		n.MustDocker("run", "-d", "--name", "c41", "--network", "sw41", "bb", "sleep", "3600")
	}
	id41 := netID(t, m1, "sw41")
	pings(t, w1, "c41", addrOn(t, m1, "c41", "sw41"))
	pings(t, w1, "c41", addrOn(t, m2, "c41", "sw41"))
	wantPeers(t, w1, id41, m1.addr, m2.addr)
	vni41 := vniOn(t, w1, id41)
	stage("worker's plugin restarted; a new network reaches its peers")

	// The manager's plugin restarts: the next network gets a VNI of its
	// own, and the old network still carries traffic.
	m1.MustDocker("plugin", "disable", "-f", pluginName)
	m1.MustDocker("plugin", "enable", pluginName)
	m1.MustDocker("network", "create", "-d", pluginName, "--scope", "swarm", "--attachable", "--subnet", "198.19.42.0/24", "sw42")
	m1.MustDocker("run", "-d", "--name", "c42", "--network", "sw42", "bb", "sleep", "3600")
	vni42 := vniOn(t, m1, netID(t, m1, "sw42"))
	if vni42 == vni40 || vni42 == vni41 || vni41 == vni40 {
		t.Fatalf("VNIs %d, %d, %d: want three different", vni40, vni41, vni42)
	}
	pings(t, m1, "c40", aw)
	pings(t, m1, "c40", a2)
	stage(fmt.Sprintf("manager's plugin restarted; VNIs %d %d %d", vni40, vni41, vni42))

	// A bad option: docker network create succeeds (swarm allocates
	// later), the refusal with the option named is in the manager's
	// log, and the network is never usable.
	m1.MustDocker("network", "create", "-d", pluginName, "--scope", "swarm", "--attachable", "--subnet", "198.19.49.0/24", "-o", "TTL=300", "swbad")
	eventually(t, 30*time.Second, "refusal in the manager's log", func() error {
		if !regexp.MustCompile(`Failed allocation for network .*remote: vxlan: option TTL=300: out of range; accepted: 0\.\.255`).MatchString(m1.DockerdLog()) {
			return fmt.Errorf("not there")
		}
		return nil
	})
	t.Logf("docker network ls on the manager after the refusal:\n%s", m1.MustDocker("network", "ls", "--filter", "name=swbad"))
	m1.MustDocker("service", "create", "--detach", "--name", "sbad", "--network", "swbad", "--no-resolve-image", "bb:latest", "sleep", "3600")
	time.Sleep(5 * time.Second)
	if out := m1.MustDocker("service", "ps", "sbad", "--format", "{{.CurrentState}}"); !strings.HasPrefix(out, "New") {
		t.Fatalf("a task on the refused network: %s", out)
	}
	for _, n := range nodes {
		if out := n.MustDocker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=sbad"); out != "" {
			t.Fatalf("a container of the refused network runs on %s", n.name)
		}
	}
	m1.MustDocker("service", "rm", "sbad")
	m1.MustDocker("network", "rm", "swbad")
	stage("bad option refused in the manager's log")

	// A network given ingress's VNI on the same port: the kernel refuses
	// its vxlan link on a node (ingress's link is in its own namespace,
	// out of sight, but its socket is the host's), and the node's log
	// says why; docker run only says to look there.
	m1.MustDocker("network", "create", "-d", pluginName, "--scope", "swarm", "--attachable", "--subnet", "198.19.48.0/24", "-o", "VxlanId="+ingressVNI, "swcoll")
	if out, err := m1.Docker("run", "--rm", "--network", "swcoll", "bb", "true"); err == nil {
		t.Fatalf("a container ran on a network with ingress's VNI %s: %s", ingressVNI, out)
	}
	collision := regexp.MustCompile(`option VxlanId=` + ingressVNI + `: VNI ` + ingressVNI + ` on UDP port 4789 is already used by [^;]*; the kernel said: .*A VXLAN device with the specified VNI already exists`)
	if line := collision.FindString(m1.DockerdLog()); line == "" {
		t.Fatalf("no refusal naming the VNI and the kernel's reason in m1's log:\n%s", grepLines(m1.DockerdLog(), ingressVNI))
	} else {
		t.Logf("m1's log: %s", line)
	}
	m1.MustDocker("network", "rm", "swcoll")
	stage("ingress's VNI refused by the kernel, reason in the node's log")

	// The worker leaves: its FDB entries go from the others (also from
	// m2, whose PEERS setting names it).
	w1.MustDocker("rm", "-f", "c41")
	w1.MustDocker("swarm", "leave")
	wantPeers(t, m1, id40, m2.addr)
	wantPeers(t, m2, id40, m1.addr)
	wantPeers(t, m1, id41, m2.addr)
	wantAdmitted(t, m1.NS, uint32(vni40), m2.addr) // the VTEP filters let go of it too
	wantAdmitted(t, m2.NS, uint32(vni40), m1.addr)
	eventually(t, 60*time.Second, "links gone on the node that left", func() error {
		if left := ownedLinks(t, w1.Host); len(left) != 0 {
			return fmt.Errorf("left: %v", left)
		}
		return nil
	})
	stage("worker left; its FDB entries, its place in the VTEP filters and its links are gone")

	// It comes back as a third manager; the leader's dockerd is killed;
	// a network created at the new leader gets a VNI distinct from all.
	w1.SwarmJoin(managerToken, m1.addr, w1.addr)
	managers := []*dockerhost.Host{m1.Host, m2.Host, w1.Host}
	eventually(t, 30*time.Second, "three reachable managers", func() error {
		out, err := m1.Docker("node", "ls", "--format", "{{.ManagerStatus}}")
		if err != nil || strings.Count(out, "Reachable")+strings.Count(out, "Leader") != 3 {
			return fmt.Errorf("%s %v", out, err)
		}
		return nil
	})
	leader := nodes[dockerhost.LeaderHost(t, managers)]
	leader.KillDockerd()
	var rest []*dockerhost.Host
	var restNodes []*swarmNode
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n.Host)
			restNodes = append(restNodes, n)
		}
	}
	newLeader := restNodes[dockerhost.LeaderHost(t, rest)]
	stage("leader " + leader.name + " killed; new leader " + newLeader.name)
	newLeader.MustDocker("network", "create", "-d", pluginName, "--scope", "swarm", "--attachable", "--subnet", "198.19.43.0/24", "sw43")
	newLeader.MustDocker("run", "-d", "--name", "c43", "--network", "sw43", "bb", "sleep", "3600")
	vni43 := vniOn(t, newLeader, netID(t, newLeader, "sw43"))
	if slices.Contains([]int{vni40, vni41, vni42}, vni43) {
		t.Fatalf("VNI %d at the new leader, already held (%d %d %d)", vni43, vni40, vni41, vni42)
	}
	stage(fmt.Sprintf("network at the new leader: VNI %d", vni43))

	// The killed engine comes back; then everything is removed.
	leader.StartAgain()
	for _, n := range nodes {
		for _, c := range []string{"c40", "c41", "c42", "c43"} {
			_, _ = n.Docker("rm", "-f", c)
		}
	}
	newLeader.MustDocker("service", "rm", "s40")
	for _, net := range []string{"sw40", "sw41", "sw42", "sw43"} {
		eventually(t, 60*time.Second, "removal of "+net, func() error {
			_, err := newLeader.Docker("network", "rm", net)
			if err != nil && strings.Contains(err.Error(), "not found") {
				return nil
			}
			return err
		})
	}
	for _, n := range nodes {
		eventually(t, 60*time.Second, "links gone on "+n.name, func() error {
			if left := ownedLinks(t, n.Host); len(left) != 0 {
				return fmt.Errorf("left: %v", left)
			}
			return nil
		})
	}
	stage("removed; no link left")
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
