package vxlan_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// ipNeigh is what `ip -j neigh show` prints for one entry.
type ipNeigh struct {
	Dst    string   `json:"dst"`
	Lladdr string   `json:"lladdr"`
	State  []string `json:"state"`
}

func ipNeighs(t *testing.T, ns *testns.NS, dev string) map[string]ipNeigh {
	t.Helper()
	out := ns.IP("-j", "neigh", "show", "dev", dev)
	var list []ipNeigh
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	m := map[string]ipNeigh{}
	for _, n := range list {
		m[n.Dst] = n
	}
	return m
}

// waitNeigh waits up to two seconds for dev in ns to have a neighbour
// entry for dst with a MAC, and returns it.
func waitNeigh(t *testing.T, ns *testns.NS, dev, dst string) ipNeigh {
	t.Helper()
	var n ipNeigh
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if n = ipNeighs(t, ns, dev)[dst]; n.Lladdr != "" {
			break
		}
	}
	return n
}

// ask makes ns resolve each address by sending it one ping, which nothing
// answers; the pings run at once.
func ask(ns *testns.NS, dsts ...netip.Addr) {
	var wg sync.WaitGroup
	for _, dst := range dsts {
		wg.Go(func() { _, _ = ns.Exec("ping", "-n", "-q", "-c", "1", "-W", "1", dst.String()) })
	}
	wg.Wait()
}

// A vxlan link with Proxy set answers ARP and neighbour solicitations from
// the entries AddProxyEntry installs: a host on the same bridge, in another
// namespace, resolves the addresses to the entries' MACs, and resolves
// nothing for an address without an entry.
func TestIntegrationProxyEntries(t *testing.T) {
	a := testns.New(t) // the VTEP: vx0 with proxy, bridged with a veth to b
	b := testns.New(t) // a host asking
	c := vxlan.New(a.Dial())
	if err := c.Create(ctx, vxlan.Config{Name: "vx0", VNI: 100, Proxy: true, Learning: vxlan.Ptr(false), Up: true}); err != nil {
		t.Fatal(err)
	}
	a.IP("link", "add", "br0", "type", "bridge")
	a.IP("link", "set", "vx0", "master", "br0")
	va, vb := testns.Underlay(t, a, b, netip.MustParsePrefix("198.18.5.254/24"), netip.MustParsePrefix("198.18.5.1/24"),
		netip.MustParsePrefix("fd00:5::fe/64"), netip.MustParsePrefix("fd00:5::1/64"))
	a.IP("addr", "flush", "dev", va) // a bridge port carries no address of its own
	a.IP("link", "set", va, "master", "br0")
	a.IP("link", "set", "br0", "up")

	mac4, _ := net.ParseMAC("02:00:00:00:05:02")
	mac6, _ := net.ParseMAC("02:00:00:00:05:03")
	ip4, ip6 := netip.MustParseAddr("198.18.5.2"), netip.MustParseAddr("fd00:5::2")
	if err := c.AddProxyEntry(ctx, "vx0", ip4, mac4); err != nil {
		t.Fatal(err)
	}
	if err := c.AddProxyEntry(ctx, "vx0", ip6, mac6); err != nil {
		t.Fatal(err)
	}

	// Read back with the library and with iproute2.
	entries, err := c.ProxyEntries(ctx, "vx0")
	if err != nil {
		t.Fatal(err)
	}
	got := map[netip.Addr]vxlan.ProxyEntry{}
	for _, e := range entries {
		got[e.IP] = e
	}
	for ip, mac := range map[netip.Addr]net.HardwareAddr{ip4: mac4, ip6: mac6} {
		e := got[ip]
		if e.MAC.String() != mac.String() || e.State != vxlan.NeighPermanent || !e.State.Answers() {
			t.Errorf("ProxyEntries has %v for %s, want %s permanent", e, ip, mac)
		}
		n := ipNeighs(t, a, "vx0")[ip.String()]
		if n.Lladdr != mac.String() || strings.Join(n.State, ",") != "PERMANENT" {
			t.Errorf("ip neigh show dev vx0 has %+v for %s", n, ip)
		}
	}
	if s := got[ip4].String(); s != "198.18.5.2 lladdr 02:00:00:00:05:02 permanent" {
		t.Errorf("String() = %q", s)
	}

	// b asks; the kernel of a answers from the entries.
	unknown := netip.MustParseAddr("198.18.5.9")
	ask(b, ip4, ip6, unknown) // no host has the addresses: only ARP and ND replies come
	if n := waitNeigh(t, b, vb, ip4.String()); n.Lladdr != mac4.String() {
		t.Errorf("b resolved %s to %+v, want %s", ip4, n, mac4)
	}
	if n := waitNeigh(t, b, vb, ip6.String()); n.Lladdr != mac6.String() {
		t.Errorf("b resolved %s to %+v, want %s", ip6, n, mac6)
	}
	if n := ipNeighs(t, b, vb)[unknown.String()]; n.Lladdr != "" {
		t.Errorf("b resolved %s, which has no proxy entry, to %+v", unknown, n)
	}

	// Replace re-points; delete removes, twice without error.
	if err := c.AddProxyEntry(ctx, "vx0", ip4, mac6); err != nil {
		t.Fatal(err)
	}
	if n := ipNeighs(t, a, "vx0")[ip4.String()]; n.Lladdr != mac6.String() {
		t.Errorf("after replace: %+v", n)
	}
	for range 2 {
		if err := c.DeleteProxyEntry(ctx, "vx0", ip4); err != nil {
			t.Fatal(err)
		}
	}
	if n, ok := ipNeighs(t, a, "vx0")[ip4.String()]; ok {
		t.Errorf("after delete: %+v", n)
	}
}

func TestIntegrationProxyEntryErrors(t *testing.T) {
	_, c := host(t)
	if err := c.Create(ctx, vxlan.Config{Name: "vx0", VNI: 100, Proxy: true}); err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:00:00:00:05:02")
	ip := netip.MustParseAddr("198.18.5.2")
	var ce *vxlan.ConfigError
	for _, bad := range []string{"239.1.1.1", "0.0.0.0", "::ffff:198.18.5.2", "127.0.0.1", "ff02::1"} {
		if err := c.AddProxyEntry(ctx, "vx0", netip.MustParseAddr(bad), mac); !errors.As(err, &ce) || ce.Field != "ip" {
			t.Errorf("AddProxyEntry(%s) = %v", bad, err)
		}
	}
	if err := c.AddProxyEntry(ctx, "vx0", netip.Addr{}, mac); !errors.As(err, &ce) || ce.Field != "ip" {
		t.Errorf("AddProxyEntry(zero Addr) = %v", err)
	}
	for _, bad := range []net.HardwareAddr{nil, {0, 0, 0, 0, 0, 0}, {1, 0, 0x5e, 0, 0, 1}, {2, 0, 0, 0, 0}} {
		if err := c.AddProxyEntry(ctx, "vx0", ip, bad); !errors.As(err, &ce) || ce.Field != "mac" {
			t.Errorf("AddProxyEntry(mac %v) = %v", bad, err)
		}
	}
	if entries, err := c.ProxyEntries(ctx, "vx0"); err != nil || len(entries) != 0 {
		t.Errorf("after refused input: %v, %v", entries, err)
	}
	if err := c.AddProxyEntry(ctx, "ul0", ip, mac); !errors.Is(err, vxlan.ErrWrongKind) {
		t.Errorf("AddProxyEntry on a veth: %v", err)
	}
	if _, err := c.ProxyEntries(ctx, "nosuch0"); !errors.Is(err, vxlan.ErrNotFound) {
		t.Errorf("ProxyEntries of nosuch0: %v", err)
	}
}
