package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/vxlanpkt"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/vtepfilter"
)

// filterSwitch is an underlay switch (bridge sw0 in a namespace of its
// own), with a port per namespace plugged into it.
func filterSwitch(t testing.TB) *testns.NS {
	t.Helper()
	sw := testns.New(t)
	sw.IP("link", "add", "sw0", "type", "bridge")
	sw.IP("link", "set", "sw0", "up")
	return sw
}

// plug joins ns to the switch as ul0 with address addr/24.
func plug(t testing.TB, sw, ns *testns.NS, port, addr string) {
	t.Helper()
	sw.IP("link", "add", port, "type", "veth", "peer", "name", "ul0", "netns", ns.Name)
	sw.IP("link", "set", port, "master", "sw0", "up")
	ns.IP("addr", "add", addr+"/24", "dev", "ul0", "nodad")
	ns.IP("link", "set", "ul0", "up")
}

// filterDockerHost starts dockerd and the plugin in a namespace on the
// switch.
func filterDockerHost(t testing.TB, sw *testns.NS, port, addr, bin string) *dockerhost.Host {
	t.Helper()
	ns := testns.New(t)
	plug(t, sw, ns, port, addr)
	h := dockerhost.Start(t, ns)
	h.StartPlugin(bin, "-d", "-vtepdev", "ul0", "-state-dir", h.StateDir())
	h.ImportBusybox("bb")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log, %s:\n%s", addr, h.PluginLog())
		}
	})
	return h
}

// attacker is a namespace on the underlay that is no peer of the network
// attacked: it sends VXLAN-encapsulated ARP by hand from a UDP socket and
// listens on the VXLAN port for an answer.
type attacker struct {
	ns   *testns.NS
	addr netip.Addr
	mac  net.HardwareAddr
	rx   *net.UDPConn
}

func newAttacker(t *testing.T, sw *testns.NS, addr string) *attacker {
	t.Helper()
	a := &attacker{ns: testns.New(t), addr: netip.MustParseAddr(addr)}
	a.mac, _ = net.ParseMAC("02:00:00:00:66:66")
	plug(t, sw, a.ns, "swx", addr)
	if err := a.ns.Do(func() (err error) {
		a.rx, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.addr, 4789)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.rx.Close() })
	return a
}

// arp sends count VXLAN packets carrying VNI vni to host:4789, each an ARP
// request for target from sender (the attacker's MAC).
func (a *attacker) arp(t *testing.T, host netip.Addr, vni uint32, sender, target string, count int) {
	t.Helper()
	frame := vxlanpkt.ARPRequest(a.mac, netip.MustParseAddr(sender), netip.MustParseAddr(target))
	if err := vxlanpkt.Send(a.ns, a.addr, netip.AddrPortFrom(host, 4789), vxlanpkt.Encap(vni, frame), count); err != nil {
		t.Fatal(err)
	}
}

// answer waits up to wait for an ARP reply carried with VNI vni, and
// returns whether one came. Other VXLAN packets (a network whose peer the
// attacker is floods to it) are passed over.
func (a *attacker) answer(vni uint32, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	buf := make([]byte, 2048)
	for {
		_ = a.rx.SetReadDeadline(deadline)
		n, _, err := a.rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			return false
		}
		p := buf[:n]
		// VXLAN header (8), Ethernet (14): EtherType at 20, ARP opcode at 28.
		if n >= 30 && uint32(p[4])<<16|uint32(p[5])<<8|uint32(p[6]) == vni && p[20] == 0x08 && p[21] == 0x06 && p[28] == 0 && p[29] == 2 {
			return true
		}
	}
}

// networkStatus returns the network's status from `docker-vxlan-plugin
// status -json`, run in h's namespaces.
func networkStatus(t *testing.T, h *dockerhost.Host, bin, id string) linuxhost.NetworkStatus {
	t.Helper()
	_, rep := (&opsHost{Host: h}).statusJSON(t, bin)
	for _, n := range rep.Networks {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("status has no network %s", id)
	return linuxhost.NetworkStatus{}
}

// filterOfLink returns the VTEP filter status of the network whose vxlan
// link is vx, from status run in h's namespaces, or nil.
func filterOfLink(t *testing.T, h *dockerhost.Host, bin, vx string) *linuxhost.FilterStatus {
	t.Helper()
	_, rep := (&opsHost{Host: h}).statusJSON(t, bin)
	for _, n := range rep.Networks {
		if slices.ContainsFunc(n.Links, func(it linuxhost.ItemStatus) bool { return it.Name == vx }) {
			return n.Filter
		}
	}
	return nil
}

// dropped waits until the network's VTEP filter on h has dropped want
// packets, as status reports it.
func dropped(t *testing.T, h *dockerhost.Host, bin, id string, want uint64) {
	t.Helper()
	testns.Eventually(t, 5*time.Second, 100*time.Millisecond, "drop counter", func() error {
		f := networkStatus(t, h, bin, id).Filter
		switch {
		case f == nil || f.State != linuxhost.FilterOn:
			return fmt.Errorf("not filtered: %+v", f)
		case f.Dropped.Packets != want:
			return fmt.Errorf("dropped %d, want %d", f.Dropped.Packets, want)
		}
		return nil
	})
}

// learnt reports whether the host's FDB on vx, or the container's
// neighbour table, hold the attacker's MAC.
func learnt(t *testing.T, h *dockerhost.Host, vx, container, mac, ip string) (fdb, neigh bool) {
	t.Helper()
	out, err := testns.Run("bridge", "-n", h.NS.Name, "fdb", "show", "dev", vx)
	if err != nil {
		t.Fatal(err)
	}
	arp := h.MustDocker("exec", container, "cat", "/proc/net/arp")
	return strings.Contains(out, mac), strings.Contains(arp, ip+" ")
}

// The attack, through real dockerd engines on a shared underlay: a
// namespace that is no peer of the network sends VXLAN-encapsulated ARP
// for a container's address. With the filter (the default) the container's
// neighbour table does not learn it, the host's FDB does not learn its
// MAC, no answer comes back, and status counts the drops; the peers still
// reach each other. The attacker, a peer of another network on the same
// host, cannot inject into this one with its VNI, while its own network
// admits it. A network with VtepFilter=false lets the same packets
// through and answers them. After a plugin restart, the same holds.
func TestIntegrationDockerVTEPFilter(t *testing.T) {
	dockerhost.Require(t)
	bin := buildPlugin(t)
	sw := filterSwitch(t)
	a := filterDockerHost(t, sw, "swa", "198.18.40.1", bin)
	b := filterDockerHost(t, sw, "swb", "198.18.40.2", bin)
	x := newAttacker(t, sw, "198.18.40.9")
	hostA := netip.MustParseAddr("198.18.40.1")

	// net41 on A and B, each the other's peer; containers ca and cb.
	id := a.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.41.0/24", "--gateway", "198.19.41.1",
		"-o", "VxlanId=41", "-o", "Peers=198.18.40.2", "net41")
	b.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.41.0/24", "--gateway", "198.19.41.254",
		"-o", "VxlanId=41", "-o", "Peers=198.18.40.1", "net41")
	a.MustDocker("run", "-d", "--name", "ca", "--net", "net41", "--ip", "198.19.41.11", "bb", "sleep", "3600")
	b.MustDocker("run", "-d", "--name", "cb", "--net", "net41", "--ip", "198.19.41.12", "bb", "sleep", "3600")
	if out, err := a.Docker("exec", "ca", "ping", "-c", "3", "-W", "2", "198.19.41.12"); err != nil {
		t.Fatalf("the peers do not reach each other with the filter on: %v\n%s", err, out)
	}
	vx41 := "vx_" + id[:12]
	st := networkStatus(t, a, bin, id)
	if st.Filter == nil || !slices.Equal(st.Filter.Allowed, []netip.Prefix{netip.MustParsePrefix("198.18.40.2/32")}) || st.Err() != nil {
		t.Fatalf("status of net41 on A: filter %+v, %v", st.Filter, st.Err())
	}
	code, out := (&opsHost{Host: a}).status(t, bin)
	if code != 0 || !strings.Contains(out, "allow 198.18.40.2") || !strings.Contains(out, "filtered, 0 packets dropped") {
		t.Errorf("status table (exit %d) lacks the filter's line:\n%s", code, out)
	}

	// net42 on A only, with the attacker as its peer.
	id42 := a.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.42.0/24", "--gateway", "198.19.42.1",
		"-o", "VxlanId=42", "-o", "Peers=198.18.40.9", "net42")
	a.MustDocker("run", "-d", "--name", "c42", "--net", "net42", "--ip", "198.19.42.11", "bb", "sleep", "3600")

	attack := func(what string, wantDropped uint64) {
		t.Helper()
		x.arp(t, hostA, 41, "198.19.41.99", "198.19.41.11", 5)
		if x.answer(41, 2*time.Second) {
			t.Errorf("%s: the attacker got an answer through net41", what)
		}
		dropped(t, a, bin, id, wantDropped)
		fdb, neigh := learnt(t, a, vx41, "ca", x.mac.String(), "198.19.41.99")
		if fdb || neigh {
			t.Errorf("%s: learnt from the attacker: host FDB %v, container neighbour table %v", what, fdb, neigh)
		}
	}
	attack("a non-peer", 5)
	if out, err := a.Docker("exec", "ca", "ping", "-c", "2", "-W", "2", "198.19.41.12"); err != nil {
		t.Fatalf("the peers do not reach each other after the attack: %v\n%s", err, out)
	}

	// The attacker is net42's peer: its own VNI gets in (and is answered),
	// net41's does not.
	x.arp(t, hostA, 42, "198.19.42.99", "198.19.42.11", 3)
	if !x.answer(42, 5*time.Second) {
		t.Error("net42's peer got no answer on net42: the filter drops a network's own peer")
	}
	attack("a peer of net42 using net41's VNI", 10)
	if f := networkStatus(t, a, bin, id42).Filter; f == nil || f.Dropped.Packets != 0 {
		t.Errorf("net42 dropped its own peer's packets: %+v", f)
	}

	// VtepFilter=false: the same attack gets through and is answered.
	a.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.43.0/24", "--gateway", "198.19.43.1",
		"-o", "VxlanId=43", "-o", "Peers=198.18.40.2", "-o", "VtepFilter=false", "net43")
	a.MustDocker("run", "-d", "--name", "c43", "--net", "net43", "--ip", "198.19.43.11", "bb", "sleep", "3600")
	x.arp(t, hostA, 43, "198.19.43.99", "198.19.43.11", 3)
	if !x.answer(43, 5*time.Second) {
		t.Error("VtepFilter=false: the attacker got no answer, so the packets were not let through")
	}
	testns.Eventually(t, 5*time.Second, 100*time.Millisecond, "the unfiltered container learning the attacker", func() error {
		if _, neigh := learnt(t, a, "vx_"+strings.TrimSpace(a.MustDocker("network", "inspect", "-f", "{{.Id}}", "net43"))[:12], "c43",
			x.mac.String(), "198.19.43.99"); !neigh {
			return errors.New("c43 did not learn 198.19.43.99")
		}
		return nil
	})

	// A restart of the plugin builds the table again; the counter goes on.
	if err := a.StopPlugin(syscall.SIGTERM); err != nil {
		t.Logf("plugin stop: %v", err)
	}
	a.StartPlugin(bin, "-d", "-vtepdev", "ul0", "-state-dir", a.StateDir())
	attack("after a plugin restart", 15)
	if out, err := a.Docker("exec", "ca", "ping", "-c", "2", "-W", "2", "198.19.41.12"); err != nil {
		t.Fatalf("the peers do not reach each other after a restart: %v\n%s", err, out)
	}

	// A peer added later, by re-creating the network with it, is admitted.
	a.MustDocker("rm", "-f", "ca")
	a.RemoveNetwork("net41")
	id = a.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.41.0/24", "--gateway", "198.19.41.1",
		"-o", "VxlanId=41", "-o", "Peers=198.18.40.2,198.18.40.9", "net41")
	a.MustDocker("run", "-d", "--name", "ca", "--net", "net41", "--ip", "198.19.41.11", "bb", "sleep", "3600")
	x.arp(t, hostA, 41, "198.19.41.99", "198.19.41.11", 3)
	if !x.answer(41, 5*time.Second) {
		t.Error("a peer added by re-creating the network got no answer")
	}
	if f := networkStatus(t, a, bin, id).Filter; f == nil || f.Dropped.Packets != 0 {
		t.Errorf("the re-created network dropped its new peer's packets: %+v", f)
	}
}

// wantAdmitted waits until the VTEP filter in ns admits exactly want on
// the network of VNI vni, as its table holds it.
func wantAdmitted(t testing.TB, ns *testns.NS, vni uint32, want ...netip.Addr) {
	t.Helper()
	h := ns.Open()
	testns.Eventually(t, 30*time.Second, 200*time.Millisecond, "the VTEP filter of VNI "+fmt.Sprint(vni)+" in "+ns.Name, func() error {
		states, err := vtepfilter.ReadNetNS(t.Context(), h.Fd())
		if err != nil {
			return err
		}
		for _, s := range states {
			if s.VNI != vni {
				continue
			}
			n := 0
			for _, p := range s.Allowed {
				n += 1 << (p.Addr().BitLen() - p.Bits())
			}
			for _, a := range want {
				if !slices.ContainsFunc(s.Allowed, func(p netip.Prefix) bool { return p.Contains(a) }) {
					return fmt.Errorf("admits %v, not %s", s.Allowed, a)
				}
			}
			if n != len(want) {
				return fmt.Errorf("admits %v, want exactly %v", s.Allowed, want)
			}
			return nil
		}
		return fmt.Errorf("no rules for VNI %d: %+v", vni, states)
	})
}
