package vxlan_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// twoHosts makes two namespaces joined by a veth underlay carrying
// 198.18.2.1-2/24 and fd00:2::1-2/64, and returns them with a Client each
// and the underlay device names.
func twoHosts(t *testing.T) (a, b *testns.NS, ca, cb *vxlan.Client, ula, ulb string) {
	t.Helper()
	a, b = testns.New(t), testns.New(t)
	ula, ulb = testns.Underlay(t, a, b,
		netip.MustParsePrefix("198.18.2.1/24"), netip.MustParsePrefix("198.18.2.2/24"),
		netip.MustParsePrefix("fd00:2::1/64"), netip.MustParsePrefix("fd00:2::2/64"))
	return a, b, vxlan.New(a.Dial()), vxlan.New(b.Dial()), ula, ulb
}

// overlay gives the vxlan link of each host an overlay address and checks
// that a pings b across it, in both families.
func overlayPing(t *testing.T, a, b *testns.NS, name string) {
	t.Helper()
	a.IP("addr", "add", "198.19.2.1/24", "dev", name)
	b.IP("addr", "add", "198.19.2.2/24", "dev", name)
	a.IP("addr", "add", "fd00:f2::1/64", "dev", name, "nodad")
	b.IP("addr", "add", "fd00:f2::2/64", "dev", name, "nodad")
	for _, dst := range []string{"198.19.2.2", "fd00:f2::2"} {
		if err := a.Ping(netip.MustParseAddr(dst), 3); err != nil {
			t.Fatalf("overlay ping %s: %v", dst, err)
		}
	}
}

func TestIntegrationTraffic(t *testing.T) {
	cases := []struct {
		name      string
		underlay6 bool
		multicast bool
	}{
		{"MulticastIPv4Underlay", false, true},
		{"UnicastIPv4Underlay", false, false},
		{"MulticastIPv6Underlay", true, true},
		{"UnicastIPv6Underlay", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b, ca, cb, ula, ulb := twoHosts(t)
			la, lb := netip.MustParseAddr("198.18.2.1"), netip.MustParseAddr("198.18.2.2")
			group := netip.MustParseAddr("239.1.1.2")
			if tc.underlay6 {
				la, lb = netip.MustParseAddr("fd00:2::1"), netip.MustParseAddr("fd00:2::2")
				group = netip.MustParseAddr("ff05::102")
			}
			for _, h := range []struct {
				c           *vxlan.Client
				dev         string
				local, peer netip.Addr
			}{{ca, ula, la, lb}, {cb, ulb, lb, la}} {
				cfg := vxlan.Config{Name: "vx0", VNI: 4242, Device: h.dev, Local: h.local, Up: true}
				if tc.multicast {
					cfg.Group = group
				}
				if err := h.c.Create(ctx, cfg); err != nil {
					t.Fatal(err)
				}
				if !tc.multicast {
					if err := h.c.AddPeer(ctx, "vx0", h.peer); err != nil {
						t.Fatal(err)
					}
				}
			}
			overlayPing(t, a, b, "vx0")
		})
	}
}

// bridgeFDB is one entry of `bridge -j fdb show`.
type bridgeFDB struct {
	MAC    string   `json:"mac"`
	Dst    string   `json:"dst"`
	Ifname string   `json:"ifname"`
	Flags  []string `json:"flags"`
	State  string   `json:"state"`
	VNI    int      `json:"vni"`
	Port   int      `json:"port"`
	Via    string   `json:"viaIf"`
}

func fdbJSON(t *testing.T, ns *testns.NS, dev string) []bridgeFDB {
	t.Helper()
	out, err := ns.Exec("bridge", "-j", "fdb", "show", "dev", dev)
	if err != nil {
		t.Fatal(err)
	}
	var entries []bridgeFDB
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("bridge -j fdb: %v: %s", err, out)
	}
	return entries
}

func TestIntegrationFDBHelpers(t *testing.T) {
	ns, c := host(t)
	if err := c.Create(ctx, vxlan.Config{Name: "vx0", VNI: 7, Device: "ul0", Learning: vxlan.Ptr(false)}); err != nil {
		t.Fatal(err)
	}
	peers := []netip.Addr{netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("198.18.1.3"), netip.MustParseAddr("198.18.1.9")}
	for _, p := range peers {
		if err := c.AddPeer(ctx, "vx0", p); err != nil {
			t.Fatal(err)
		}
	}
	// Adding a peer twice is harmless.
	if err := c.AddPeer(ctx, "vx0", peers[0]); err != nil {
		t.Fatalf("second AddPeer: %v", err)
	}
	got, err := c.Peers(ctx, "vx0")
	if err != nil || len(got) != 3 {
		t.Fatalf("Peers = %v, %v", got, err)
	}
	mac := net.HardwareAddr{2, 0, 0, 0, 0xcc, 1}
	if err := c.AddStaticMAC(ctx, "vx0", mac, peers[0]); err != nil {
		t.Fatal(err)
	}
	// Re-pointing a MAC replaces its entry.
	if err := c.AddStaticMAC(ctx, "vx0", mac, peers[1]); err != nil {
		t.Fatal(err)
	}

	// What iproute2's bridge tool sees.
	seen := map[string]bool{}
	for _, e := range fdbJSON(t, ns, "vx0") {
		seen[e.MAC+" "+e.Dst+" "+e.State] = true
	}
	for _, want := range []string{
		"00:00:00:00:00:00 198.18.1.2 permanent", "00:00:00:00:00:00 198.18.1.3 permanent",
		"00:00:00:00:00:00 198.18.1.9 permanent", "02:00:00:00:cc:01 198.18.1.3 permanent",
	} {
		if !seen[want] {
			t.Errorf("bridge fdb lacks %q; has %v", want, seen)
		}
	}
	if seen["02:00:00:00:cc:01 198.18.1.2 permanent"] {
		t.Error("the static MAC still points at its old VTEP")
	}
	entries, err := c.FDB(ctx, "vx0")
	if err != nil || len(entries) != 4 {
		t.Fatalf("FDB = %v, %v", entries, err)
	}

	if err := c.RemovePeer(ctx, "vx0", peers[1]); err != nil {
		t.Fatal(err)
	}
	if err := c.RemovePeer(ctx, "vx0", peers[1]); err != nil {
		t.Fatalf("removing a peer already gone: %v", err)
	}
	if err := c.RemoveStaticMAC(ctx, "vx0", mac); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Peers(ctx, "vx0"); len(got) != 2 {
		t.Fatalf("after RemovePeer: %v", got)
	}
	if n := len(fdbJSON(t, ns, "vx0")); n != 2 {
		t.Fatalf("bridge fdb shows %d entries, want 2", n)
	}

	// FDB helpers refuse links that are not vxlan.
	if err := c.AddPeer(ctx, "ul0", peers[0]); !errors.Is(err, vxlan.ErrWrongKind) {
		t.Fatalf("AddPeer on a veth: %v", err)
	}
	var ce *vxlan.ConfigError
	if err := c.AddPeer(ctx, "vx0", netip.MustParseAddr("239.1.1.1")); !errors.As(err, &ce) {
		t.Fatalf("AddPeer with a multicast remote: %v", err)
	}
	// A remote of the other family than the underlay: the kernel refuses,
	// and the error says why in words.
	err = c.AddPeer(ctx, "vx0", netip.MustParseAddr("fd00:1::9"))
	if err == nil || !strings.Contains(err.Error(), "IPv6") || !strings.Contains(err.Error(), "vx0") {
		t.Fatalf("AddPeer with an IPv6 remote on an IPv4 vxlan: %v", err)
	}
}

// L2 and L3 misses of a vxlan in a bridge reach a neighbour watcher: the
// building block of a control plane that resolves overlay addresses
// without flooding. The "container" is a veth whose other end is a port of
// the bridge, so its ARP requests cross the vxlan as bridged traffic.
func TestIntegrationMissEvents(t *testing.T) {
	ns, c := host(t)
	if err := c.Create(ctx, vxlan.Config{Name: "vx0", VNI: 8, Device: "ul0", Proxy: true, L3Miss: true, L2Miss: true, Learning: vxlan.Ptr(false), Up: true}); err != nil {
		t.Fatal(err)
	}
	ns.IP("link", "add", "br0", "up", "type", "bridge")
	ns.IP("link", "add", "c0", "type", "veth", "peer", "name", "c0h")
	ns.IP("link", "set", "c0h", "master", "br0", "up")
	ns.IP("link", "set", "vx0", "master", "br0")
	ns.IP("addr", "add", "198.19.8.1/24", "dev", "c0")
	ns.IP("link", "set", "c0", "up")
	// A neighbour with a MAC the vxlan's FDB does not know: an L2 miss.
	ns.IP("neigh", "add", "198.19.8.8", "lladdr", "02:00:00:00:00:08", "dev", "c0", "nud", "permanent")
	vx, err := c.Conn().LinkByName(ctx, "vx0")
	if err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	l3 := netip.MustParseAddr("198.19.8.7")
	var sawL2, sawL3 bool
	done := make(chan error, 1)
	go func() {
		done <- rtlink.WatchNeighbors(wctx, func(ev rtlink.NeighEvent) error {
			if ev.Type != rtlink.NeighMiss || ev.Neigh.LinkIndex != vx.Index {
				return nil
			}
			if ev.Neigh.IP == l3 {
				sawL3 = true
			}
			if ev.Neigh.MAC.String() == "02:00:00:00:00:08" {
				sawL2 = true
			}
			if sawL2 && sawL3 {
				return errors.New("both seen")
			}
			return nil
		}, rtlink.WithNetNSPath(ns.Path()))
	}()
	for {
		_, _ = ns.Exec("ping", "-c", "1", "-W", "1", l3.String())
		_, _ = ns.Exec("ping", "-c", "1", "-W", "1", "198.19.8.8")
		select {
		case err := <-done:
			if !sawL2 || !sawL3 {
				t.Fatalf("watch ended with %v; L2 miss seen: %v, L3 miss seen: %v", err, sawL2, sawL3)
			}
			return
		default:
		}
	}
}

// Links made by iproute2 decode into the Config that describes them.
func TestIntegrationDecodeIproute2Links(t *testing.T) {
	ns, c := host(t)
	ns.IP("link", "add", "vx-ip4", "type", "vxlan", "id", "4242", "group", "239.1.1.1", "dev", "ul0",
		"local", "198.18.1.1", "dstport", "4790", "srcport", "5000", "6000", "ttl", "64", "tos", "0x10",
		"df", "set", "proxy", "rsc", "l2miss", "l3miss", "nolearning", "ageing", "77", "maxaddress", "100",
		"gbp", "noudpcsum", "remcsumtx", "remcsumrx")
	ns.IP("link", "add", "vx-ip6", "type", "vxlan", "id", "7", "remote", "fd00:1::2", "local", "fd00:1::1",
		"flowlabel", "0x12345", "ttl", "inherit", "udp6zerocsumtx", "udp6zerocsumrx", "dstport", "0")
	ns.IP("link", "add", "vx-ext", "type", "vxlan", "external", "vnifilter", "dstport", "4789")
	ns.IP("link", "add", "vx-gpe", "type", "vxlan", "external", "gpe", "nolearning", "dstport", "4790")

	cases := []vxlan.Config{
		{Name: "vx-ip4", VNI: 4242, Group: netip.MustParseAddr("239.1.1.1"), Device: "ul0", Local: netip.MustParseAddr("198.18.1.1"),
			Port: 4790, SrcPorts: vxlan.PortRange{Low: 5000, High: 6000}, TTL: 64, TOS: 0x10, DF: vxlan.DFSet,
			Proxy: true, RSC: true, L2Miss: true, L3Miss: true, Learning: vxlan.Ptr(false), Ageing: vxlan.Ptr(77 * time.Second),
			Limit: 100, GBP: true, UDPChecksum: vxlan.Ptr(false), RemoteChecksumTX: true, RemoteChecksumRX: true},
		{Name: "vx-ip6", VNI: 7, Group: netip.MustParseAddr("fd00:1::2"), Local: netip.MustParseAddr("fd00:1::1"), Port: 8472,
			Label: 0x12345, TTLInherit: true, UDPZeroChecksum6TX: true, UDPZeroChecksum6RX: true, Learning: vxlan.Ptr(true)},
		{Name: "vx-ext", CollectMetadata: true, VNIFilter: true, Port: 4789},
		{Name: "vx-gpe", CollectMetadata: true, GPE: true, Learning: vxlan.Ptr(false), Port: 4790},
	}
	for _, want := range cases {
		got, err := c.Get(ctx, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		// Ensure compares every field want sets with the decoded link.
		if _, err := c.Ensure(ctx, want); err != nil {
			t.Errorf("%s: %v\ndecoded %+v", want.Name, err, got)
		}
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 4 {
		t.Fatalf("List = %d links, %v", len(list), err)
	}
}
