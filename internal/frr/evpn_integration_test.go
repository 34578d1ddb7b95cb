package frr_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/frr"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

var ctx = context.Background()

// evpnHost is one VTEP host: a namespace with an underlay address, and a
// container namespace whose eth0 is a veth into the host's bridge br100.
type evpnHost struct {
	ns, ctr *testns.NS
	c       *rtlink.Conn
	addr    netip.Addr // underlay address: VTEP and BGP router ID
	ctrAddr netip.Addr
	ctrMAC  net.HardwareAddr
}

const (
	vni      = 100
	bgpAS    = 65000
	converge = 30 * time.Second // bound on every wait for the control plane
)

// newHost makes a host namespace with underlay address addr (not yet on
// any link) and its container namespace, whose address will be ctrAddr.
func newHost(t *testing.T, addr, ctrAddr string) *evpnHost {
	h := &evpnHost{ns: testns.New(t), ctr: testns.New(t), addr: netip.MustParseAddr(addr), ctrAddr: netip.MustParseAddr(ctrAddr)}
	h.c = h.ns.Dial()
	return h
}

// buildVTEP creates what EVPN expects of a host: bridge br100, and vx100
// (VNI 100, local = the host's underlay address, port 4789, learning off)
// as its port with port learning off and neighbour suppression on.
func (h *evpnHost) buildVTEP(t *testing.T) {
	t.Helper()
	br, err := h.c.CreateLink(ctx, &rtlink.Link{Name: "br100", Up: true, Data: &rtlink.Bridge{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := vxlan.New(h.c).Create(ctx, vxlan.Config{Name: "vx100", VNI: vni, Local: h.addr, Port: 4789, Learning: vxlan.Ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.SetMaster(ctx, "vx100", br.Index); err != nil {
		t.Fatal(err)
	}
	if err := h.c.SetBridgePort(ctx, "vx100", &rtlink.BridgePort{Learning: vxlan.Ptr(false), NeighSuppress: vxlan.Ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.SetUp(ctx, "vx100"); err != nil {
		t.Fatal(err)
	}
}

// addContainer plugs the container namespace into br100: host end ve100,
// container end eth0 with the container's address.
func (h *evpnHost) addContainer(t *testing.T) {
	t.Helper()
	br, err := h.c.LinkByName(ctx, "br100")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.CreateLink(ctx, &rtlink.Link{Name: "ve100", MasterIndex: br.Index, Up: true,
		Data: &rtlink.Veth{PeerName: "eth0", PeerNetNS: h.ctr.Open()}}); err != nil {
		t.Fatal(err)
	}
	h.ctr.IP("addr", "add", netip.PrefixFrom(h.ctrAddr, 24).String(), "dev", "eth0")
	h.ctr.IP("link", "set", "eth0", "up")
	eth0, err := h.ctr.Dial().LinkByName(ctx, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	h.ctrMAC = eth0.HardwareAddr
}

// fdbEntry is one line of `bridge -j fdb show dev vx100`.
type fdbEntry struct {
	MAC    string   `json:"mac"`
	Dst    string   `json:"dst"`
	Master string   `json:"master"`
	Flags  []string `json:"flags"`
	State  string   `json:"state"`
}

func (h *evpnHost) fdb(t *testing.T) []fdbEntry {
	t.Helper()
	out, err := h.ns.Exec("bridge", "-j", "fdb", "show", "dev", "vx100")
	if err != nil {
		t.Fatal(err)
	}
	var entries []fdbEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("bridge -j fdb show dev vx100: %v: %s", err, out)
	}
	return entries
}

// find returns the vxlan device's own (self) entry for mac with remote dst.
func find(entries []fdbEntry, mac string, dst netip.Addr) *fdbEntry {
	for i, e := range entries {
		if e.MAC == mac && e.Dst == dst.String() && slices.Contains(e.Flags, "self") {
			return &entries[i]
		}
	}
	return nil
}

// hasMAC reports whether any entry, the bridge's or the vxlan device's,
// is for mac.
func hasMAC(entries []fdbEntry, mac string) bool {
	return slices.ContainsFunc(entries, func(e fdbEntry) bool { return e.MAC == mac })
}

// waitFor polls cond every 50 ms up to converge and returns how long it
// took, failing the test with what cond last said.
func waitFor(t *testing.T, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	return testns.Eventually(t, converge, 50*time.Millisecond, what, testns.Holds(cond))
}

// Two hosts on a veth underlay, each with zebra and bgpd peering over iBGP
// EVPN and no static peer anywhere: the VTEPs find each other (type-3
// routes become the all-zero FDB entry), each host installs the other's
// container MAC as extern_learn (type-2), the containers ping with learning
// off on the vxlan, and a container removed on one host leaves the other
// host's FDB. Host 2 builds its VTEP before starting FRR; host 1 starts FRR
// before its bridge and vxlan exist: both orders converge.
func TestIntegrationEVPNTwoHosts(t *testing.T) {
	frr.Require(t)
	hosts := [2]*evpnHost{newHost(t, "198.18.77.1", "198.18.100.1"), newHost(t, "198.18.77.2", "198.18.100.2")}
	h1, h2 := hosts[0], hosts[1]
	testns.Underlay(t, h1.ns, h2.ns, netip.PrefixFrom(h1.addr, 24), netip.PrefixFrom(h2.addr, 24))

	h2.buildVTEP(t)
	h2.addContainer(t)
	r2 := frr.Start(t, h2.ns, frr.EVPNConfig(h2.addr, bgpAS, h1.addr))
	started := time.Now()
	r1 := frr.Start(t, h1.ns, frr.EVPNConfig(h1.addr, bgpAS, h2.addr))
	t.Logf("%s: zebra and bgpd answered %v after they were started", h1.ns.Name, time.Since(started).Round(time.Millisecond))
	h1.buildVTEP(t)
	h1.addContainer(t)
	up := time.Now()
	v, _ := r1.Vtysh("show version")
	t.Logf("FRR: %.40s", v)

	defer announce(hosts)()

	waitFor(t, h1.ns.Name+" BGP session", func() (bool, string) {
		sum, err := r1.EVPNSummary()
		return err == nil && sum.Peers[h2.addr.String()].State == "Established", fmt.Sprintf("%+v %v", sum, err)
	})
	t.Logf("%s: BGP session Established %v after bgpd was started, %v after host 1's VTEP and container were up", h1.ns.Name,
		time.Since(started).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))

	for _, w := range []struct {
		r      *frr.Router
		remote netip.Addr
	}{{r1, h2.addr}, {r2, h1.addr}} {
		if _, err := w.r.WaitVNI(vni, []netip.Addr{w.remote}, converge); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: show evpn vni lists VNI %d with remote VTEP %s %v after host 1's VTEP and container were up", w.r.NS.Name, vni, w.remote, time.Since(up).Round(time.Millisecond))
		sum, err := w.r.EVPNSummary()
		if err != nil {
			t.Fatal(err)
		}
		if p := sum.Peers[w.remote.String()]; p.State != "Established" {
			t.Fatalf("%s: peer %s is %+v, want Established", w.r.NS.Name, w.remote, p)
		}
	}

	// Each host's vxlan FDB: the other VTEP under the all-zero MAC (from its
	// type-3 route, permanent), the other container's MAC as extern_learn
	// (type-2), and nothing the kernel learnt itself.
	for _, h := range hosts {
		o := other(hosts, h)
		d := waitFor(t, h.ns.Name+" FDB", func() (bool, string) {
			entries := h.fdb(t)
			bum := find(entries, "00:00:00:00:00:00", o.addr)
			mac := find(entries, o.ctrMAC.String(), o.addr)
			ok := bum != nil && bum.State == "permanent" && mac != nil && slices.Contains(mac.Flags, "extern_learn")
			b, _ := json.Marshal(entries)
			return ok, string(b)
		})
		t.Logf("%s: FDB holds %s's VTEP and container MAC %s (extern_learn) %v after host 1's VTEP and container were up (%v after show evpn vni did)",
			h.ns.Name, o.ns.Name, o.ctrMAC, time.Since(up).Round(time.Millisecond), d.Round(time.Millisecond))
		for _, e := range h.fdb(t) {
			if e.State != "permanent" && !slices.Contains(e.Flags, "extern_learn") {
				t.Fatalf("%s: vx100 FDB holds a learnt entry %+v", h.ns.Name, e)
			}
		}
		// The same entries through rtlink's decoder: state and flags as
		// the kernel reports them.
		vx, err := h.c.LinkByName(ctx, "vx100")
		if err != nil {
			t.Fatal(err)
		}
		neighs, err := h.c.Neighs(ctx, rtlink.FamilyBridge, vx.Index)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range neighs {
			if n.MAC.String() == o.ctrMAC.String() || n.IP == o.addr {
				t.Logf("%s: rtlink reads %v with NUD state %#x, flags %#x", h.ns.Name, n, n.State, n.Flags)
			}
		}
	}

	pingEach(t, hosts)

	// Container 1 goes: its MAC leaves host 2's FDB once zebra on host 1
	// withdraws the type-2 route.
	if err := h1.c.DeleteLink(ctx, "ve100"); err != nil {
		t.Fatal(err)
	}
	gone := waitFor(t, h2.ns.Name+" FDB without "+h1.ctrMAC.String(), func() (bool, string) {
		entries := h2.fdb(t)
		b, _ := json.Marshal(entries)
		return !hasMAC(entries, h1.ctrMAC.String()), string(b)
	})
	t.Logf("%s: container MAC %s left the FDB %v after its veth was deleted on %s", h2.ns.Name, h1.ctrMAC, gone.Round(time.Millisecond), h1.ns.Name)
	if e := find(h2.fdb(t), "00:00:00:00:00:00", h1.addr); e == nil {
		t.Fatalf("%s: the VTEP entry for %s went with the container", h2.ns.Name, h1.addr)
	}
}

// announce has each container send one ping to the other, in the
// background, whose answer does not matter: so each host's bridge learns its
// local container's MAC and zebra advertises it, as it does when a real
// container first sends. It returns a function that waits for the pings.
func announce(hosts [2]*evpnHost) (wait func()) {
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Go(func() { _, _ = h.ctr.Exec("ping", "-c1", "-W1", other(hosts, h).ctrAddr.String()) })
	}
	return wg.Wait
}

// pingEach pings each container from the other, once, after forgetting
// what the announcing pings left in their ARP caches (an entry that failed
// while the control plane was still converging answers "unreachable" at
// once for a while).
func pingEach(t *testing.T, hosts [2]*evpnHost) {
	t.Helper()
	for _, h := range hosts {
		h.ctr.IP("neigh", "flush", "dev", "eth0")
	}
	for _, h := range hosts {
		dst := other(hosts, h).ctrAddr
		if out, err := h.ctr.Exec("ping", "-c1", "-W1", dst.String()); err != nil {
			t.Fatalf("%s -> %s: %v\n%s", h.ctr.Name, dst, err, out)
		}
	}
}

// other returns the host of the pair that is not h.
func other(hosts [2]*evpnHost, h *evpnHost) *evpnHost {
	if hosts[0] == h {
		return hosts[1]
	}
	return hosts[0]
}

// The route-reflector form: hosts 2 and 3 peer only with host 1, the
// reflector, each over an underlay link of its own and routed through it;
// they still learn each other's VTEP and container MAC, and their containers
// ping. Adding a host means configuring it and the reflector only.
func TestIntegrationEVPNRouteReflector(t *testing.T) {
	frr.Require(t)
	rr := newHost(t, "198.18.78.1", "198.18.101.1")
	a, b := newHost(t, "198.18.78.2", "198.18.101.2"), newHost(t, "198.18.79.3", "198.18.101.3")
	rrB := netip.MustParseAddr("198.18.79.1") // the reflector's address towards b
	testns.Underlay(t, rr.ns, a.ns, netip.PrefixFrom(rr.addr, 24), netip.PrefixFrom(a.addr, 24))
	testns.Underlay(t, rr.ns, b.ns, netip.PrefixFrom(rrB, 24), netip.PrefixFrom(b.addr, 24))
	if _, err := rr.ns.Exec("sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		t.Fatal(err)
	}
	a.ns.IP("route", "add", "198.18.79.0/24", "via", rr.addr.String())
	b.ns.IP("route", "add", "198.18.78.0/24", "via", rrB.String())

	frr.Start(t, rr.ns, frr.EVPNRouteReflectorConfig(rr.addr, bgpAS, a.addr, b.addr))
	routers := map[*evpnHost]*frr.Router{}
	for _, h := range []*evpnHost{a, b} {
		h.buildVTEP(t)
		h.addContainer(t)
		peer := rr.addr
		if h == b {
			peer = rrB
		}
		routers[h] = frr.Start(t, h.ns, frr.EVPNConfig(h.addr, bgpAS, peer))
	}
	up := time.Now()
	pair := [2]*evpnHost{a, b}
	defer announce(pair)()
	for _, h := range pair {
		o := other(pair, h)
		if _, err := routers[h].WaitVNI(vni, []netip.Addr{o.addr}, converge); err != nil {
			t.Fatal(err)
		}
		waitFor(t, h.ns.Name+" FDB", func() (bool, string) {
			entries := h.fdb(t)
			mac := find(entries, o.ctrMAC.String(), o.addr)
			b, _ := json.Marshal(entries)
			return find(entries, "00:00:00:00:00:00", o.addr) != nil && mac != nil && slices.Contains(mac.Flags, "extern_learn"), string(b)
		})
		t.Logf("%s: VTEP %s and MAC %s reflected %v after the VTEPs came up", h.ns.Name, o.addr, o.ctrMAC, time.Since(up).Round(time.Millisecond))
	}
	pingEach(t, pair)
}
