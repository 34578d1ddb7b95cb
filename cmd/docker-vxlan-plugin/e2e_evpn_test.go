package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/frr"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// evpnDockerHost is a Docker engine with the plugin and FRR (zebra and
// bgpd) in one host namespace, its underlay device ul0 on a switch shared
// with the other hosts.
type evpnDockerHost struct {
	name string
	ns   *testns.NS
	d    *dockerhost.Host
	addr netip.Addr // underlay address: the VTEP and the BGP router ID
	r    *frr.Router
	vx   string // the network's vxlan link
}

const (
	evpnVNI     = 30
	evpnAS      = 65000
	evpnNet     = "evpn30"
	evpnConv    = 30 * time.Second // bound on every wait for the control plane to converge
	evpnRemoval = 2 * time.Second  // the bound on a removed container leaving the other hosts' FDB
)

// newEVPNDockerHost makes a host namespace on the switch sw (port swN),
// with address addr on ul0, and starts dockerd and the plugin in it.
func newEVPNDockerHost(t *testing.T, sw *testns.NS, name, bin string, addr string) *evpnDockerHost {
	t.Helper()
	h := &evpnDockerHost{name: name, ns: testns.New(t), addr: netip.MustParseAddr(addr)}
	port := "sw" + name
	sw.IP("link", "add", port, "type", "veth", "peer", "name", "ul0", "netns", h.ns.Name)
	sw.IP("link", "set", port, "master", "sw0", "up")
	h.ns.IP("addr", "add", addr+"/24", "dev", "ul0")
	h.ns.IP("link", "set", "ul0", "up")
	h.d = dockerhost.Start(t, h.ns)
	h.d.StartPlugin(bin, "-d", "-vtepdev", "ul0", "-state-dir", h.d.StateDir())
	h.d.ImportBusybox("bb")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log, host %s:\n%s", h.name, h.d.PluginLog())
		}
	})
	return h
}

// createNetwork makes the EVPN network: no Peers, no Group.
func (h *evpnDockerHost) createNetwork(t *testing.T) {
	t.Helper()
	id := h.d.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.30.0/24", "--gateway", "198.19.30.1",
		"-o", fmt.Sprintf("VxlanId=%d", evpnVNI), "-o", "ControlPlane=evpn", evpnNet)
	h.vx = "vx_" + id[:12]
}

// startFRR starts zebra and bgpd in the host's namespace with config.
func (h *evpnDockerHost) startFRR(t *testing.T, config string) {
	t.Helper()
	h.r = frr.Start(t, h.ns, config)
}

// run starts a busybox container on the network with address ip and
// returns its MAC address.
func (h *evpnDockerHost) run(t *testing.T, name, ip string) string {
	t.Helper()
	h.d.MustDocker("run", "-d", "--name", name, "--net", evpnNet, "--ip", ip, "bb", "sleep", "3600")
	return h.d.MustDocker("exec", name, "cat", "/sys/class/net/eth0/address")
}

// fdb returns the vxlan link's own FDB through package vxlan's decoder,
// with each entry's kind, and checks it against iproute2's reading: every
// entry is the all-zero VTEP entry (permanent) or extern_learn, none
// learnt from traffic.
func (h *evpnDockerHost) fdb(t *testing.T) []vxlan.FDBEntry {
	t.Helper()
	entries, err := vxlan.New(h.ns.Dial()).FDB(t.Context(), h.vx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if k := e.Kind(); k != vxlan.FDBPeer && k != vxlan.FDBExternLearned {
			t.Fatalf("host %s: %s holds %s, of kind %s: the control plane installs only VTEPs and extern_learn MACs", h.name, h.vx, e, k)
		}
	}
	out, err := h.ns.Exec("bridge", "-j", "fdb", "show", "dev", h.vx)
	if err != nil {
		t.Fatal(err)
	}
	var ip2 []struct {
		MAC   string   `json:"mac"`
		Flags []string `json:"flags"`
		State string   `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &ip2); err != nil {
		t.Fatalf("bridge -j fdb show: %v: %s", err, out)
	}
	for _, e := range ip2 {
		if slices.Contains(e.Flags, "self") && e.State != "permanent" && !slices.Contains(e.Flags, "extern_learn") {
			t.Fatalf("host %s: bridge fdb show dev %s holds a learnt entry %+v", h.name, h.vx, e)
		}
	}
	return entries
}

// holds reports whether the FDB has mac as extern_learn, to remote.
func holds(entries []vxlan.FDBEntry, mac string, remote netip.Addr) bool {
	return slices.ContainsFunc(entries, func(e vxlan.FDBEntry) bool {
		return e.MAC.String() == mac && e.Remote == remote && e.Kind() == vxlan.FDBExternLearned
	})
}

// hasMAC reports whether any FDB entry on the vxlan link is for mac: the
// link's own (self) ones, read by package vxlan, or the bridge's for the
// port (master), read by iproute2.
func (h *evpnDockerHost) hasMAC(t *testing.T, mac string) (bool, string) {
	t.Helper()
	own := h.fdb(t)
	out, err := h.ns.Exec("bridge", "-j", "fdb", "show", "dev", h.vx)
	if err != nil {
		t.Fatal(err)
	}
	var all []struct {
		MAC string `json:"mac"`
	}
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("bridge -j fdb show: %v: %s", err, out)
	}
	found := slices.ContainsFunc(own, func(e vxlan.FDBEntry) bool { return e.MAC.String() == mac }) ||
		slices.ContainsFunc(all, func(e struct {
			MAC string `json:"mac"`
		}) bool {
			return e.MAC == mac
		})
	return found, out
}

// within polls cond every 20 ms until it holds and returns how long that
// took; after limit it fails the test with what cond last said.
func within(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	return testns.Eventually(t, limit, 20*time.Millisecond, what, testns.Holds(cond))
}

// ping pings ip once from the container, failing the test on loss.
func (h *evpnDockerHost) ping(t *testing.T, from, ip string) {
	t.Helper()
	if out, err := h.d.Docker("exec", from, "ping", "-c", "1", "-W", "2", ip); err != nil {
		t.Fatalf("host %s: %s -> %s: %v\n%s", h.name, from, ip, err, out)
	}
}

// BGP EVPN through FRR: the same network (no Peers, no Group) on hosts A
// and B, then a third host C. A runs the route-reflector form of the
// configuration (its clients B and, added to its running configuration
// through vtysh when C joins, C peer with A only); B and C the plain form
// with A as their one neighbour. A starts FRR before the network
// exists, B after it: both orders converge. Asserted on the kernel and in
// FRR: the vxlan links' learning off and local address, their port flags,
// `show evpn vni` listing the other VTEPs, each FDB holding the other
// hosts' container MACs as extern_learn and nothing learnt, pings between
// every pair of hosts, a removed container leaving the other host's FDB
// within 2 s, and no link left after the network is removed. Logged: the
// time from a container's start until a container on another host reaches
// it, and until that host's FDB holds its MAC, p50 over 20 containers.
func TestIntegrationDockerEVPN(t *testing.T) {
	dockerhost.Require(t)
	frr.Require(t)
	bin := buildPlugin(t)
	sw := testns.New(t) // the underlay switch: one bridge, a port per host
	sw.IP("link", "add", "sw0", "type", "bridge")
	sw.IP("link", "set", "sw0", "up")
	a := newEVPNDockerHost(t, sw, "A", bin, "198.18.30.1")
	b := newEVPNDockerHost(t, sw, "B", bin, "198.18.30.2")
	cAddr := netip.MustParseAddr("198.18.30.3")

	// A: FRR first, then the network. B: the network first, then FRR.
	a.startFRR(t, frr.EVPNRouteReflectorConfig(a.addr, evpnAS, b.addr))
	a.createNetwork(t)
	b.createNetwork(t)
	bgpStart := time.Now()
	b.startFRR(t, frr.EVPNConfig(b.addr, evpnAS, a.addr))
	for _, w := range []struct{ h, o *evpnDockerHost }{{a, b}, {b, a}} {
		if _, err := w.h.r.WaitVNI(evpnVNI, []netip.Addr{w.o.addr}, evpnConv); err != nil {
			t.Fatal(err)
		}
		t.Logf("host %s: show evpn vni lists VNI %d with remote VTEP %s, %v after B's FRR was started", w.h.name, evpnVNI, w.o.addr, time.Since(bgpStart).Round(time.Millisecond))
	}

	// What the plugin built: learning off and the underlay address as
	// local on the vxlan link, learning off and neigh_suppress on on its
	// bridge port.
	for _, h := range []*evpnDockerHost{a, b} {
		vx := h.ns.LinkJSON(h.vx)
		if d := vx.Linkinfo.InfoData; d["learning"] != false || d["local"] != h.addr.String() || d["link"] != "ul0" || d["id"] != float64(evpnVNI) {
			t.Fatalf("host %s: vxlan %+v", h.name, vx.Linkinfo.InfoData)
		}
		out, err := h.ns.Exec("bridge", "-j", "-d", "link", "show", "dev", h.vx)
		if err != nil || !strings.Contains(out, `"learning":false`) || !strings.Contains(out, `"neigh_suppress":true`) {
			t.Fatalf("host %s: bridge link show dev %s: %v %s", h.name, h.vx, err, out)
		}
	}

	mac1 := a.run(t, "c1", "198.19.30.11")
	mac2 := b.run(t, "c2", "198.19.30.12")
	a.ping(t, "c1", "198.19.30.12")
	b.ping(t, "c2", "198.19.30.11")
	for _, w := range []struct {
		h, o *evpnDockerHost
		mac  string
	}{{a, b, mac2}, {b, a, mac1}} {
		d := within(t, evpnConv, "host "+w.h.name+" FDB holds "+w.mac, func() (bool, string) {
			entries := w.h.fdb(t)
			return holds(entries, w.mac, w.o.addr), fmt.Sprint(entries)
		})
		t.Logf("host %s: FDB holds host %s's container MAC %s as extern_learn, %v after the pings", w.h.name, w.o.name, w.mac, d.Round(time.Millisecond))
	}

	// examples/inspect, the operator's view, names the entries zebra
	// installed as extern_learn.
	inspect := filepath.Join(t.TempDir(), "inspect")
	if out, err := exec.Command("go", "build", "-o", inspect, "../../examples/inspect").CombinedOutput(); err != nil {
		t.Fatalf("go build examples/inspect: %v: %s", err, out)
	}
	out, err := testns.Run(inspect, "-netns", a.ns.Name, "-json")
	var links []struct {
		FDB []struct{ MAC, Remote, Kind string } `json:"fdb"`
	}
	if err != nil || json.NewDecoder(strings.NewReader(out)).Decode(&links) != nil || len(links) != 1 ||
		!slices.Contains(links[0].FDB, struct{ MAC, Remote, Kind string }{mac2, b.addr.String(), string(vxlan.FDBExternLearned)}) {
		t.Fatalf("inspect -netns %s -json: %v\n%s", a.ns.Name, err, out)
	}

	measureReach(t, a, b, "c1")

	// Host C joins: it peers with A only, and A, told about C in its
	// running configuration as docs/evpn.md says, reflects the routes.
	c := newEVPNDockerHost(t, sw, "C", bin, cAddr.String())
	n := "neighbor " + cAddr.String()
	if out, err := testns.Run("vtysh", "--vty_socket", a.r.Dir, "-c", "configure terminal", "-c", fmt.Sprintf("router bgp %d", evpnAS),
		"-c", n+fmt.Sprintf(" remote-as %d", evpnAS), "-c", "address-family l2vpn evpn", "-c", n+" activate", "-c", n+" route-reflector-client"); err != nil {
		t.Fatalf("adding C to A's running configuration: %v\n%s", err, out)
	}
	c.createNetwork(t)
	mac3 := c.run(t, "c3", "198.19.30.13")
	joined := time.Now()
	c.startFRR(t, frr.EVPNConfig(c.addr, evpnAS, a.addr))
	for _, w := range []struct {
		h      *evpnDockerHost
		others []netip.Addr
	}{{a, []netip.Addr{b.addr, c.addr}}, {b, []netip.Addr{a.addr, c.addr}}, {c, []netip.Addr{a.addr, b.addr}}} {
		if _, err := w.h.r.WaitVNI(evpnVNI, w.others, evpnConv); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("every host lists the two others in show evpn vni %v after C's FRR was started", time.Since(joined).Round(time.Millisecond))
	if out, err := a.r.Vtysh("show evpn vni"); err == nil {
		t.Logf("host A: vtysh -c 'show evpn vni':\n%s", out)
	}
	c.ping(t, "c3", "198.19.30.11")
	c.ping(t, "c3", "198.19.30.12")
	a.ping(t, "c1", "198.19.30.13")
	b.ping(t, "c2", "198.19.30.13")
	// The VTEP filter of each host admits the other two, C with nothing
	// touched on A and B: their allow-lists follow the flood entries.
	for _, w := range []struct {
		h      *evpnDockerHost
		others []netip.Addr
	}{{a, []netip.Addr{b.addr, c.addr}}, {b, []netip.Addr{a.addr, c.addr}}, {c, []netip.Addr{a.addr, b.addr}}} {
		within(t, evpnConv, "host "+w.h.name+" VTEP filter admits the other hosts", func() (bool, string) {
			f := filterOfLink(t, w.h.d, bin, w.h.vx)
			for _, o := range w.others {
				if f == nil || !slices.ContainsFunc(f.Allowed, func(p netip.Prefix) bool { return p.Contains(o) }) {
					return false, fmt.Sprintf("%+v", f)
				}
			}
			return true, ""
		})
	}
	for _, w := range []struct {
		h    *evpnDockerHost
		want map[string]netip.Addr
	}{{c, map[string]netip.Addr{mac1: a.addr, mac2: b.addr}}, {a, map[string]netip.Addr{mac3: c.addr}}, {b, map[string]netip.Addr{mac3: c.addr}}} {
		within(t, evpnConv, "host "+w.h.name+" FDB", func() (bool, string) {
			entries := w.h.fdb(t)
			for mac, remote := range w.want {
				if !holds(entries, mac, remote) {
					return false, fmt.Sprint(entries)
				}
			}
			return true, ""
		})
	}

	if out, err := c.ns.Exec("bridge", "fdb", "show", "dev", c.vx); err == nil {
		t.Logf("host C: bridge fdb show dev %s:\n%s", c.vx, out)
	}

	// A container removed on B leaves A's and C's FDB within 2 s.
	removing := time.Now()
	b.d.MustDocker("rm", "-f", "c2")
	removed := time.Now()
	within(t, evpnRemoval, "hosts A and C FDB without "+mac2, func() (bool, string) {
		inA, sa := a.hasMAC(t, mac2)
		inC, sc := c.hasMAC(t, mac2)
		return !inA && !inC, sa + sc
	})
	t.Logf("c2's MAC left host A's and host C's FDB %v after docker rm -f returned (docker rm took %v)", time.Since(removed).Round(time.Millisecond), removed.Sub(removing).Round(time.Millisecond))

	// Removal leaves no link, and zebra no VNI.
	for _, h := range []*evpnDockerHost{a, b, c} {
		if out, err := h.d.Docker("ps", "-aq"); err == nil && out != "" {
			h.d.MustDocker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
		}
		h.d.RemoveNetwork(evpnNet)
		if left := ownedLinks(t, h.d); len(left) != 0 {
			t.Fatalf("host %s: left after network rm: %v", h.name, left)
		}
		within(t, evpnConv, "host "+h.name+" zebra forgets VNI", func() (bool, string) {
			vnis, err := h.r.EVPNVNIs()
			_, known := vnis[evpnVNI]
			return err == nil && !known, fmt.Sprint(vnis, err)
		})
	}
}

// measureReach starts 20 containers on b, one at a time, and measures for
// each the time from `docker run -d` returning until container from on a
// gets an answer to a ping, and until a's FDB holds its MAC as
// extern_learn; it logs the p50 and the maximum of both, then removes the
// containers and checks that their MACs leave a's FDB within 2 s.
func measureReach(t *testing.T, a, b *evpnDockerHost, from string) {
	t.Helper()
	pid := a.d.MustDocker("inspect", "-f", "{{.State.Pid}}", from)
	const n = 20
	var reach, fdb []time.Duration
	var names, macs []string
	for i := range n {
		name, ip := fmt.Sprintf("p%d", i), fmt.Sprintf("198.19.30.%d", 100+i)
		b.d.MustDocker("run", "-d", "--name", name, "--net", evpnNet, "--ip", ip, "bb", "sleep", "3600")
		started := time.Now()
		within(t, evpnConv, "ping "+ip+" from host A", func() (bool, string) {
			out, err := testns.Run("nsenter", "-t", pid, "-n", "ping", "-c", "1", "-W", "0.2", ip)
			return err == nil, out
		})
		reach = append(reach, time.Since(started))
		mac := fmt.Sprintf("02:42:c6:13:1e:%02x", 100+i) // the plugin's MAC of an IPv4 address
		within(t, evpnConv, "host A FDB holds "+mac, func() (bool, string) {
			entries := a.fdb(t)
			return holds(entries, mac, b.addr), fmt.Sprint(entries)
		})
		fdb = append(fdb, time.Since(started))
		names, macs = append(names, name), append(macs, mac)
	}
	t.Logf("container start on host B until a container on host A reaches it, over %d containers: p50 %v, max %v", n, p50(reach), slices.Max(reach).Round(time.Millisecond))
	t.Logf("container start on host B until host A's FDB holds its MAC as extern_learn: p50 %v, max %v", p50(fdb), slices.Max(fdb).Round(time.Millisecond))
	b.d.MustDocker(append([]string{"rm", "-f"}, names...)...)
	d := within(t, evpnRemoval, "host A FDB without the 20 MACs", func() (bool, string) {
		for _, m := range macs {
			if in, state := a.hasMAC(t, m); in {
				return false, state
			}
		}
		return true, ""
	})
	t.Logf("the %d MACs left host A's FDB %v after docker rm -f of all of them returned", n, d.Round(time.Millisecond))
}

// p50 returns the median of ds, rounded to the millisecond.
func p50(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + m) / 2
	}
	return m.Round(time.Millisecond)
}
