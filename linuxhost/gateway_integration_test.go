package linuxhost

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// anycastSite is one host of TestIntegrationAnycastGateway: its
// namespace, its Host, its network and one container.
type anycastSite struct {
	ns, ctr *testns.NS
	h       *Host
	spec    *fabric.NetworkSpec
	ep      *fabric.Endpoint
	addr4   netip.Prefix // the container's
	addr6   netip.Prefix
}

const (
	anycastGW4 = "198.19.77.1/24"
	anycastGW6 = "fd00:77::1/64"
)

// newAnycastSite makes host number i (1 or 2) of the network: the bridge
// network with an anycast gateway and the host addresses .1i, peered with
// the other host over underlay link ul, and a container with the addresses
// .10i and default routes through the gateway.
func newAnycastSite(t *testing.T, ns *testns.NS, i int, ul string, peer netip.Addr, opts map[string]string) *anycastSite {
	t.Helper()
	s := &anycastSite{ns: ns, h: New(ns.Dial()), ctr: testns.New(t)}
	t.Cleanup(func() { s.h.Close() })
	o := map[string]string{"VxlanId": "77", "VtepDev": ul, "Peers": peer.String()}
	for k, v := range opts {
		o[k] = v
	}
	spec, err := fabric.Resolve(t.Context(), s.h, o, fabric.ResolveConfig{ID: "anycast0net", Scope: fabric.ScopeLocal,
		Gateways: []netip.Prefix{netip.MustParsePrefix(anycastGW4), netip.MustParsePrefix(anycastGW6)}})
	if err != nil {
		t.Fatal(err)
	}
	spec.AnycastGateway = true
	spec.HostAddresses = []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("198.19.77.1%d/24", i))}
	if err := s.h.CreateNetwork(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	// The IPv6 host address comes later, as an allocator hands it out
	// once the network's links exist.
	v6 := netip.MustParsePrefix(fmt.Sprintf("fd00:77::1%d/64", i))
	if err := s.h.AddHostAddress(t.Context(), spec, v6); err != nil {
		t.Fatal(err)
	}
	spec.HostAddresses = append(spec.HostAddresses, v6)
	s.spec = spec
	s.addr4 = netip.MustParsePrefix(fmt.Sprintf("198.19.77.10%d/24", i))
	s.addr6 = netip.MustParsePrefix(fmt.Sprintf("fd00:77::10%d/64", i))
	s.ep = fabric.NewEndpoint(fmt.Sprintf("anycast%dep", i), s.addr4)
	if err := s.h.CreateEndpoint(t.Context(), spec, s.ep, &ContainerNS{NetNS: s.ctr.Open(), IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	s.ctr.IP("addr", "add", s.addr4.String(), "dev", "eth0")
	s.ctr.IP("addr", "add", s.addr6.String(), "dev", "eth0", "nodad")
	s.ctr.IP("link", "set", "eth0", "up")
	s.ctr.IP("route", "add", "default", "via", "198.19.77.1")
	s.ctr.IP("-6", "route", "add", "default", "via", "fd00:77::1")
	return s
}

// neighMAC is the MAC the container's neighbour table has for addr.
func (s *anycastSite) neighMAC(t *testing.T, addr string) string {
	t.Helper()
	f := strings.Fields(s.ctr.IP("neigh", "show", addr, "dev", "eth0"))
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// Two hosts with the same network and an anycast gateway: the gateway
// link is a macvlan over the bridge with the network's MAC and the gateway
// addresses alone, no link-local address; the bridge holds the gateway MAC
// as a local FDB entry, answers ARP only for its own addresses and carries
// the host addresses. Both hosts' containers reach the gateway and see the
// same MAC for it in both families; each host reaches the other host's
// container (which answers to the host address, not the gateway); status
// sees no drift; deleting the network takes the gateway link away, and on
// an operator's bridge leaves the bridge without anything of ours.
func TestIntegrationAnycastGateway(t *testing.T) {
	nsA, nsB := testns.New(t), testns.New(t)
	ulA, ulB := testns.Underlay(t, nsA, nsB, netip.MustParsePrefix("198.18.77.1/24"), netip.MustParsePrefix("198.18.77.2/24"))
	a := newAnycastSite(t, nsA, 1, ulA, netip.MustParseAddr("198.18.77.2"), nil)
	nsB.IP("link", "add", "opbr0", "type", "bridge")
	b := newAnycastSite(t, nsB, 2, ulB, netip.MustParseAddr("198.18.77.1"), map[string]string{"bridgeName": "opbr0"})

	gwName, mac := fabric.GatewayLinkName(a.spec.ID), a.spec.GatewayMAC()
	for _, s := range []*anycastSite{a, b} {
		l := s.ns.LinkJSON(gwName)
		if l.Linkinfo.InfoKind != "macvlan" || l.Address != mac.String() || l.Link != s.spec.Bridge.Name || l.Ifalias != fabric.OwnerMark(s.spec.ID) {
			t.Fatalf("%s: gateway link: %+v, want a macvlan over %s with MAC %s", s.ns.Name, l, s.spec.Bridge.Name, mac)
		}
		if out := s.ns.IP("-br", "addr", "show", "dev", gwName); !strings.Contains(out, "198.19.77.1/32") || !strings.Contains(out, "fd00:77::1/128") || strings.Contains(out, "fe80:") {
			t.Fatalf("%s: gateway link's addresses, want 198.19.77.1/32 and fd00:77::1/128 alone:\n%s", s.ns.Name, out)
		}
		out := s.ns.IP("-br", "addr", "show", "dev", s.spec.Bridge.Name)
		for _, p := range s.spec.HostAddresses {
			if !strings.Contains(out, p.String()) {
				t.Fatalf("%s: bridge lacks host address %s:\n%s", s.ns.Name, p, out)
			}
		}
		if strings.Contains(out, "198.19.77.1/") || strings.Contains(out, "fd00:77::1/") {
			t.Fatalf("%s: the gateway is on the bridge:\n%s", s.ns.Name, out)
		}
		for key, want := range map[string]string{"arp_ignore": "1", "arp_announce": "2"} {
			if v, err := s.ns.Exec("sysctl", "-n", "net.ipv4.conf."+s.spec.Bridge.Name+"."+key); err != nil || strings.TrimSpace(v) != want {
				t.Fatalf("%s: bridge %s = %q (%v), want %s", s.ns.Name, key, v, err, want)
			}
		}
		if !hasLocalFDBEntry(t, s, mac) {
			t.Fatalf("%s: no local FDB entry for %s on the bridge:\n%s", s.ns.Name, mac, bridgeFDB(s.ns, s.spec.Bridge.Name))
		}
		if st := s.h.CheckNetwork(t.Context(), s.spec, []*fabric.Endpoint{s.ep}); st.Err() != nil {
			t.Fatalf("%s: status: %v", s.ns.Name, st.Err())
		}
	}
	for _, s := range []*anycastSite{a, b} {
		for _, gw := range []string{"198.19.77.1", "fd00:77::1"} {
			if err := s.ctr.Ping(netip.MustParseAddr(gw), 2); err != nil {
				t.Fatalf("container on %s pings the gateway %s: %v", s.ns.Name, gw, err)
			}
			if got := s.neighMAC(t, gw); got != mac.String() {
				t.Fatalf("container on %s sees gateway %s at %q, want the anycast MAC %s", s.ns.Name, gw, got, mac)
			}
		}
	}
	// A strict reverse-path filter would drop what containers route
	// through the gateway: status says so.
	nsA.Exec("sysctl", "-w", "net.ipv4.conf.all.rp_filter=1")
	st := a.h.CheckNetwork(t.Context(), a.spec, nil)
	if err := st.Err(); err == nil || !strings.Contains(err.Error(), "net.ipv4.conf.all.rp_filter is 1 (strict)") {
		t.Fatalf("status with a strict rp_filter: %v", err)
	}
	nsA.Exec("sysctl", "-w", "net.ipv4.conf.all.rp_filter=2")
	for _, c := range []struct{ from, to *anycastSite }{{a, b}, {b, a}} {
		for _, dst := range []netip.Prefix{c.to.addr4, c.to.addr6} {
			if err := c.from.ns.Ping(dst.Addr(), 2); err != nil {
				t.Fatalf("host %s pings the container on %s at %s: %v", c.from.ns.Name, c.to.ns.Name, dst.Addr(), err)
			}
		}
		// The container answered the host's own address, at the host's
		// bridge MAC, not the gateway's.
		host4 := c.from.spec.HostAddresses[0].Addr().String()
		if got := c.to.neighMAC(t, host4); got == "" || got == mac.String() {
			t.Fatalf("container on %s has %s at %q, want the bridge's MAC of %s", c.to.ns.Name, host4, got, c.from.ns.Name)
		}
	}

	if err := a.h.DeleteNetwork(t.Context(), a.spec, false); err != nil {
		t.Fatal(err)
	}
	drain(t, a.h)
	if _, err := nsA.TryIP("link", "show", gwName); err == nil {
		t.Fatalf("%s: gateway link left after the network's deletion", nsA.Name)
	}
	if err := b.h.DeleteEndpoint(t.Context(), b.spec, b.ep); err != nil {
		t.Fatal(err)
	}
	if err := b.h.DeleteNetwork(t.Context(), b.spec, false); err != nil {
		t.Fatal(err)
	}
	drain(t, b.h)
	if _, err := nsB.TryIP("link", "show", gwName); err == nil {
		t.Fatalf("%s: gateway link left on the operator's bridge", nsB.Name)
	}
	if out := nsB.IP("-br", "addr", "show", "dev", "opbr0"); strings.Contains(out, "198.19.77.12") || strings.Contains(out, "fd00:77::12") {
		t.Fatalf("host addresses left on the operator's bridge:\n%s", out)
	}
	if hasLocalFDBEntry(t, b, mac) {
		t.Fatalf("FDB entry for the gateway MAC left on the operator's bridge:\n%s", bridgeFDB(b.ns, b.spec.Bridge.Name))
	}

	// A link that is not ours under the gateway link's name is refused
	// and left alone.
	nsA.IP("link", "add", gwName, "type", "veth", "peer", "name", "gwpeer0")
	spec := *a.spec
	if err := a.h.CreateNetwork(t.Context(), &spec); err == nil || !strings.Contains(err.Error(), "not made by this plugin") {
		t.Fatalf("create over a foreign %s: %v", gwName, err)
	}
	if _, err := nsA.TryIP("link", "show", gwName); err != nil {
		t.Fatalf("the foreign %s was deleted: %v", gwName, err)
	}
}

// bridgeFDB is what iproute2's bridge lists of the bridge's forwarding
// database.
func bridgeFDB(ns *testns.NS, br string) string {
	out, _ := ns.Exec("bridge", "fdb", "show", "br", br)
	return out
}

// hasLocalFDBEntry reads the bridge's forwarding database (with rtlink, and
// with iproute2's bridge) for a permanent entry of mac on the bridge itself.
func hasLocalFDBEntry(t *testing.T, s *anycastSite, mac net.HardwareAddr) bool {
	t.Helper()
	br, err := s.h.conn.LinkByName(t.Context(), s.spec.Bridge.Name)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := s.h.conn.Neighs(t.Context(), rtlink.FamilyBridge, br.Index)
	if err != nil {
		t.Fatal(err)
	}
	ours := false
	for _, n := range entries {
		if bytes.Equal(n.MAC, mac) && n.LinkIndex == br.Index && n.State&rtlink.NUDPermanent != 0 {
			ours = true
		}
	}
	text := strings.Contains(bridgeFDB(s.ns, s.spec.Bridge.Name), mac.String()+" dev "+s.spec.Bridge.Name+" master "+s.spec.Bridge.Name+" permanent")
	if ours != text {
		t.Fatalf("rtlink (%v) and bridge fdb (%v) disagree on %s:\n%s", ours, text, mac, bridgeFDB(s.ns, s.spec.Bridge.Name))
	}
	return ours
}
