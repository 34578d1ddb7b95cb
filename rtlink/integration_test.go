package rtlink_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

var ctx = context.Background()

func mustLink(t *testing.T, c *rtlink.Conn, l *rtlink.Link) *rtlink.Link {
	t.Helper()
	got, err := c.CreateLink(ctx, l)
	if err != nil {
		t.Fatalf("create %s: %v", l.Name, err)
	}
	return got
}

func TestIntegrationLinkLifecycle(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()

	mac := net.HardwareAddr{0x02, 0, 0, 0, 0x10, 0x01}
	br := mustLink(t, c, &rtlink.Link{Name: "br0", MTU: 1400, HardwareAddr: mac, TxQueueLen: 77, Alias: "owned-by-test", Group: 42, Up: true, Data: &rtlink.Bridge{}})
	if br.Kind != "bridge" || br.MTU != 1400 || br.HardwareAddr.String() != mac.String() || br.TxQueueLen != 77 || br.Alias != "owned-by-test" || br.Group != 42 || !br.Up {
		t.Fatalf("bridge read back as %+v", br)
	}

	// Exclusive create: the name is taken.
	_, err := c.CreateLink(ctx, &rtlink.Link{Name: "br0", Data: &rtlink.Bridge{}})
	if !errors.Is(err, rtlink.ErrExists) || !errors.Is(err, unix.EEXIST) {
		t.Fatalf("second create: %v, want ErrExists and EEXIST", err)
	}
	if !strings.Contains(err.Error(), "br0") {
		t.Fatalf("error %q does not name the link", err)
	}

	// Setters, each read back.
	steps := []struct {
		name  string
		do    func() error
		check func(*rtlink.Link) bool
	}{
		{"down", func() error { return c.SetDown(ctx, "br0") }, func(l *rtlink.Link) bool { return !l.Up }},
		{"up", func() error { return c.SetUp(ctx, "br0") }, func(l *rtlink.Link) bool { return l.Up }},
		{"mtu", func() error { return c.SetMTU(ctx, "br0", 1300) }, func(l *rtlink.Link) bool { return l.MTU == 1300 }},
		{"mac", func() error { return c.SetHardwareAddr(ctx, "br0", net.HardwareAddr{2, 0, 0, 0, 0x10, 2}) }, func(l *rtlink.Link) bool { return l.HardwareAddr.String() == "02:00:00:00:10:02" }},
		{"txqlen", func() error { return c.SetTxQueueLen(ctx, "br0", 0) }, func(l *rtlink.Link) bool { return l.TxQueueLen == 0 }},
		{"alias", func() error { return c.SetAlias(ctx, "br0", "second") }, func(l *rtlink.Link) bool { return l.Alias == "second" }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		l, err := c.LinkByName(ctx, "br0")
		if err != nil {
			t.Fatal(err)
		}
		if !s.check(l) {
			t.Fatalf("after %s: %+v", s.name, l)
		}
	}

	// veth with its peer's MTU and address, enslaved to the bridge at
	// creation; then master and nomaster.
	peerMAC := net.HardwareAddr{2, 0, 0, 0, 0x10, 3}
	v := mustLink(t, c, &rtlink.Link{Name: "v0", MTU: 1234, MasterIndex: br.Index, Data: &rtlink.Veth{PeerName: "v0p", PeerMTU: 1234, PeerHardwareAddr: peerMAC}})
	peer, err := c.LinkByName(ctx, "v0p")
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != "veth" || v.ParentIndex != peer.Index || peer.ParentIndex != v.Index || v.MasterIndex != br.Index ||
		v.MTU != 1234 || peer.MTU != 1234 || peer.HardwareAddr.String() != peerMAC.String() {
		t.Fatalf("veth pair: %+v / %+v", v, peer)
	}
	if err := c.SetNoMaster(ctx, "v0"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetMaster(ctx, "v0", br.Index); err != nil {
		t.Fatal(err)
	}
	if l, _ := c.LinkByName(ctx, "v0"); l.MasterIndex != br.Index {
		t.Fatalf("master not set: %+v", l)
	}
	if err := c.SetNoMaster(ctx, "v0"); err != nil {
		t.Fatal(err)
	}
	if l, _ := c.LinkByName(ctx, "v0"); l.MasterIndex != 0 {
		t.Fatalf("master not cleared: %+v", l)
	}

	// Rename (link is down).
	if err := c.Rename(ctx, v.Index, "v1"); err != nil {
		t.Fatal(err)
	}
	if l, err := c.LinkByIndex(ctx, v.Index); err != nil || l.Name != "v1" {
		t.Fatalf("rename: %+v %v", l, err)
	}

	// macvlan on the veth, each mode.
	for _, mode := range []rtlink.MacvlanMode{rtlink.MacvlanModePrivate, rtlink.MacvlanModeVEPA, rtlink.MacvlanModeBridge, rtlink.MacvlanModeSource} {
		name := "mv-" + mode.String()
		l := mustLink(t, c, &rtlink.Link{Name: name, ParentIndex: peer.Index, Data: &rtlink.Macvlan{Mode: mode}})
		if m, ok := l.Data.(*rtlink.Macvlan); !ok || m.Mode != mode || l.ParentIndex != peer.Index {
			t.Fatalf("macvlan %s read back as %+v %+v", mode, l, l.Data)
		}
		if got := ns.LinkJSON(name).Linkinfo.InfoData["mode"]; got != mode.String() {
			t.Fatalf("ip shows macvlan mode %v, want %s", got, mode)
		}
		if err := c.DeleteLink(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	// passthru needs a lower device of its own.
	pt := mustLink(t, c, &rtlink.Link{Name: "mv-pt", ParentIndex: peer.Index, Data: &rtlink.Macvlan{Mode: rtlink.MacvlanModePassthru}})
	if pt.Data.(*rtlink.Macvlan).Mode != rtlink.MacvlanModePassthru {
		t.Fatalf("passthru read back as %+v", pt.Data)
	}

	// List by kind is filtered in the kernel.
	bridges, err := c.Links(ctx, "bridge")
	if err != nil || len(bridges) != 1 || bridges[0].Name != "br0" {
		t.Fatalf("Links(bridge) = %v, %v", bridges, err)
	}
	all, err := c.Links(ctx, "")
	if err != nil || len(all) < 5 {
		t.Fatalf("Links() = %d links, %v", len(all), err)
	}

	// Delete, then every lookup reports not found.
	if err := c.DeleteLink(ctx, "br0"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LinkByName(ctx, "br0"); !errors.Is(err, rtlink.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := c.DeleteLink(ctx, "br0"); !errors.Is(err, rtlink.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestIntegrationVethPeerInOtherNamespace(t *testing.T) {
	a, b := testns.New(t), testns.New(t)
	ca, cb := a.Dial(), b.Dial()
	mustLink(t, ca, &rtlink.Link{Name: "va", Data: &rtlink.Veth{PeerName: "vb", PeerNetNS: b.Open()}})
	if _, err := cb.LinkByName(ctx, "vb"); err != nil {
		t.Fatalf("peer not in the other namespace: %v", err)
	}
	if _, err := ca.LinkByName(ctx, "vb"); !errors.Is(err, rtlink.ErrNotFound) {
		t.Fatalf("peer also visible here: %v", err)
	}
	// Move it back with SetNetNS.
	if err := cb.SetNetNS(ctx, "vb", a.Open()); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.LinkByName(ctx, "vb"); err != nil {
		t.Fatalf("after SetNetNS: %v", err)
	}
}

func TestIntegrationDeleteLinkGroup(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	for _, n := range []string{"g1", "g2", "g3"} {
		mustLink(t, c, &rtlink.Link{Name: n, Group: 7, Data: &rtlink.Bridge{}})
	}
	mustLink(t, c, &rtlink.Link{Name: "other", Data: &rtlink.Bridge{}})
	if err := c.DeleteLinkGroup(ctx, 7); err != nil {
		t.Fatal(err)
	}
	left, _ := c.Links(ctx, "bridge")
	if len(left) != 1 || left[0].Name != "other" {
		t.Fatalf("after group delete: %v", left)
	}
	if err := c.DeleteLinkGroup(ctx, 0); err == nil {
		t.Fatal("group 0 was not refused")
	}
}

// BriefLinks reports every link Links reports, with the same fields
// (checked against `ip -d -j link show` too) and no kind-specific data.
func TestIntegrationBriefLinks(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	ns.IP("link", "add", "ul0", "type", "veth", "peer", "name", "ul1")
	br := mustLink(t, c, &rtlink.Link{Name: "br7", Alias: "mark br7", Group: 9, Up: true, Data: &rtlink.Bridge{}})
	mustLink(t, c, &rtlink.Link{Name: "vx7", MTU: 1400, Alias: "mark vx7", MasterIndex: br.Index, Data: &rtlink.VXLAN{ID: rtlink.Ptr[uint32](7), Port: rtlink.Ptr[uint16](4789)}})
	full, err := c.Links(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	brief, err := c.BriefLinks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(brief) != len(full) || len(full) != 5 {
		t.Fatalf("BriefLinks has %d links, Links %d, want 5", len(brief), len(full))
	}
	for i, b := range brief {
		f := full[i]
		if b.Data != nil {
			t.Errorf("%s: Data %#v, want nil", b.Name, b.Data)
		}
		if f.Kind != "" && f.Data == nil {
			t.Errorf("%s: Links gave no Data for kind %q", f.Name, f.Kind)
		}
		f.Data = nil
		if fmt.Sprint(*b) != fmt.Sprint(*f) {
			t.Errorf("BriefLinks %+v\nLinks      %+v", *b, *f)
		}
		ip := ns.LinkJSON(b.Name)
		master := ""
		if b.MasterIndex == br.Index {
			master = "br7"
		}
		if ip.Ifindex != b.Index || ip.Linkinfo.InfoKind != b.Kind || ip.Ifalias != b.Alias || ip.Master != master || ip.MTU != b.MTU || ip.Address != b.HardwareAddr.String() {
			t.Errorf("ip shows %+v, BriefLinks %+v", ip, *b)
		}
	}
}

func TestIntegrationVLAN(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	parent := mustLink(t, c, &rtlink.Link{Name: "trunk", Data: &rtlink.Veth{PeerName: "trunkp"}})
	l, err := c.CreateLink(ctx, &rtlink.Link{Name: "trunk.65", ParentIndex: parent.Index, Data: &rtlink.VLAN{ID: 65}})
	if errors.Is(err, rtlink.ErrNotSupported) {
		testns.SkipMissingFeature(t, "8021q", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	v, ok := l.Data.(*rtlink.VLAN)
	if !ok || v.ID != 65 || v.Protocol != rtlink.VLANProtocol8021Q || l.ParentIndex != parent.Index {
		t.Fatalf("vlan read back as %+v %+v", l, l.Data)
	}
	if id := ns.LinkJSON("trunk.65").Linkinfo.InfoData["id"]; id != float64(65) {
		t.Fatalf("ip shows vlan id %v", id)
	}
}

func TestIntegrationAddressesAndRoutes(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	l := mustLink(t, c, &rtlink.Link{Name: "br0", Up: true, Data: &rtlink.Bridge{}})
	v4 := netip.MustParsePrefix("198.18.5.1/24")
	v6 := netip.MustParsePrefix("fd00:5::1/64")
	for _, p := range []netip.Prefix{v4, v6} {
		if err := c.AddAddress(ctx, l, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddAddress(ctx, l, v4); !errors.Is(err, rtlink.ErrExists) {
		t.Fatalf("duplicate address: %v", err)
	}
	addrs, err := c.Addresses(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	has := map[netip.Prefix]bool{}
	for _, a := range addrs {
		has[a.Prefix] = true
	}
	if !has[v4] || !has[v6] {
		t.Fatalf("addresses: %v", addrs)
	}
	if out := ns.IP("-j", "addr", "show", "dev", "br0"); !strings.Contains(out, `"198.18.5.1"`) || !strings.Contains(out, `"fd00:5::1"`) {
		t.Fatalf("ip does not show the addresses: %s", out)
	}

	gw4, gw6 := netip.MustParseAddr("198.18.5.254"), netip.MustParseAddr("fd00:5::fe")
	routes := []rtlink.Route{
		{Gateway: gw4},
		{Gateway: gw6, LinkIndex: l.Index},
		{Dst: netip.MustParsePrefix("198.19.9.0/24"), Gateway: gw4},
		{Dst: netip.MustParsePrefix("198.19.10.0/24"), LinkIndex: l.Index},
	}
	for _, r := range routes {
		if err := c.AddRoute(ctx, r); err != nil {
			t.Fatalf("add %v: %v", r, err)
		}
	}
	if out := ns.IP("route", "show", "default"); !strings.Contains(out, "default via 198.18.5.254 dev br0") {
		t.Fatalf("ip route: %q", out)
	}
	if out := ns.IP("-6", "route", "show", "default"); !strings.Contains(out, "default via fd00:5::fe dev br0") {
		t.Fatalf("ip -6 route: %q", out)
	}
	got4, err := c.Routes(ctx, netip.IPv4Unspecified())
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, r := range got4 {
		for _, w := range routes {
			if r.Dst == w.Dst && r.Gateway == w.Gateway {
				found++
			}
		}
	}
	if found != 3 {
		t.Fatalf("IPv4 routes read back: %v", got4)
	}
	for _, r := range routes {
		if err := c.DeleteRoute(ctx, r); err != nil {
			t.Fatalf("delete %v: %v", r, err)
		}
	}
	if out := ns.IP("route", "show", "default"); out != "" {
		t.Fatalf("default route left: %q", out)
	}
	for _, p := range []netip.Prefix{v4, v6} {
		if err := c.DeleteAddress(ctx, l, p); err != nil {
			t.Fatal(err)
		}
	}
	if addrs, _ := c.Addresses(ctx, l); len(addrs) != 0 {
		for _, a := range addrs {
			if !a.Prefix.Addr().IsLinkLocalUnicast() {
				t.Fatalf("addresses left: %v", addrs)
			}
		}
	}
}

func TestIntegrationNeighbours(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	l := mustLink(t, c, &rtlink.Link{Name: "br0", Up: true, Data: &rtlink.Bridge{}})
	mac := net.HardwareAddr{2, 0, 0, 0, 0x20, 1}
	n := &rtlink.Neigh{Family: rtlink.FamilyIPv4, LinkIndex: l.Index, State: rtlink.NUDPermanent, IP: netip.MustParseAddr("198.18.6.9"), MAC: mac}
	if err := c.AddNeigh(ctx, n); err != nil {
		t.Fatal(err)
	}
	if out := ns.IP("neigh", "show", "dev", "br0"); !strings.Contains(out, "198.18.6.9 lladdr 02:00:00:00:20:01 PERMANENT") {
		t.Fatalf("ip neigh: %q", out)
	}
	find := func() *rtlink.Neigh {
		t.Helper()
		got, err := c.Neighs(ctx, rtlink.FamilyIPv4, l.Index)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if g.IP == n.IP {
				return g
			}
		}
		return nil
	}
	if g := find(); g == nil || g.MAC.String() != mac.String() || g.State != rtlink.NUDPermanent || g.LinkIndex != l.Index {
		t.Fatalf("entry read back as %+v", g)
	}
	if err := c.DeleteNeigh(ctx, n); err != nil {
		t.Fatal(err)
	}
	if g := find(); g != nil {
		t.Fatalf("entry left after delete: %+v", g)
	}
}

func TestIntegrationWatchNeighborsEndsWithContext(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	l := mustLink(t, c, &rtlink.Link{Name: "br0", Up: true, Data: &rtlink.Bridge{}})
	wctx, cancel := context.WithCancel(ctx)
	events := make(chan rtlink.NeighEvent, 8)
	done := make(chan error, 1)
	go func() {
		done <- rtlink.WatchNeighbors(wctx, func(ev rtlink.NeighEvent) error { events <- ev; return nil }, rtlink.WithNetNSPath(ns.Path()))
	}()
	// The subscription is made asynchronously: add entries until one is seen.
	var ev rtlink.NeighEvent
	deadline := time.After(5 * time.Second)
	for i := 1; ev.Neigh == nil; i++ {
		n := &rtlink.Neigh{Family: rtlink.FamilyIPv4, LinkIndex: l.Index, State: rtlink.NUDPermanent, IP: netip.AddrFrom4([4]byte{198, 18, 7, byte(i)}), MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}}
		if err := c.AddNeigh(ctx, n); err != nil {
			t.Fatal(err)
		}
		select {
		case ev = <-events:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("no neighbour event arrived")
		}
	}
	if ev.Type != rtlink.NeighAdded || !ev.Neigh.IP.Is4() || ev.Neigh.LinkIndex != l.Index {
		t.Fatalf("event %v %+v", ev.Type, ev.Neigh)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("watch ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not end on cancellation")
	}
}
