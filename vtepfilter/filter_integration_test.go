package vtepfilter

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/vxlanpkt"
)

// newFilter opens a filter in a fresh namespace, skipping where the kernel
// has no nf_tables, and a second nftables connection there to read back
// with.
func newFilter(t testing.TB) (*testns.NS, *Filter, *nftables.Conn) {
	t.Helper()
	ns := testns.New(t)
	h := ns.Open()
	f, err := New(WithNetNSFd(h.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Probe(t.Context()); errors.Is(err, ErrUnsupported) {
		testns.SkipMissingFeature(t, "nf_tables", err)
	} else if err != nil {
		t.Fatal(err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(h.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return ns, f, c
}

// The kernel holds what Install asked, read back with the nftables
// library's own listing: the table (inet), its base chain on the input hook,
// a set per family with the allowed prefixes, and two rules per network
// whose expressions are the ones encoded. A table of someone else's in the
// namespace is left alone through installs and removals, and the table goes
// with the last network.
func TestIntegrationInstallReadBack(t *testing.T) {
	ns, f, c := newFilter(t)
	ctx := t.Context()
	foreign := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "someone_else"})
	c.AddChain(&nftables.Chain{Name: "input", Table: foreign, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput,
		Priority: nftables.ChainPriorityFilter})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}

	a := Network{Name: "aaaaaaaaaaaa", Port: 4789, VNI: 42, Allowed: pfx("198.18.1.2/32", "fd00::2/128", "198.18.9.0/24")}
	b := Network{Name: "bbbbbbbbbbbb", Port: 4789, VNI: 43, Allowed: pfx("198.18.1.3/32")}
	for _, n := range []Network{a, b} {
		if err := f.Install(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	tbl, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet)
	if err != nil {
		t.Fatalf("table inet %s: %v", TableName, err)
	}
	ch, err := c.ListChain(tbl, ChainName)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookInput || ch.Priority == nil || *ch.Priority != ChainPriority ||
		ch.Policy == nil || *ch.Policy != nftables.ChainPolicyAccept {
		t.Errorf("chain %s: hook %v priority %v policy %v, want input, %d, accept", ChainName, ch.Hooknum, ch.Priority, ch.Policy, ChainPriority)
	}
	rules, err := c.GetRules(tbl, ch)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 4 {
		t.Fatalf("%d rules, want 4 (2 per network)", len(rules))
	}
	for i, r := range rules {
		n := []Network{a, a, b, b}[i]
		fam := families[i%2]
		want := ruleExprs(&n, fam, &nftables.Set{Name: n.Name + fam.suffix})
		for _, e := range r.Exprs {
			if l, ok := e.(*expr.Lookup); ok {
				l.SetID = 0 // the kernel answers with the name only
			}
		}
		if !reflect.DeepEqual(r.Exprs, want) {
			t.Errorf("rule %d as the kernel has it:\n%s\nwant:\n%s", i, dumpExprs(r.Exprs), dumpExprs(want))
		}
		if ruleComment(r) != n.comment() {
			t.Errorf("rule %d comment %q, want %q", i, ruleComment(r), n.comment())
		}
	}
	s4, err := c.GetSetByName(tbl, a.Name+"_v4")
	if err != nil {
		t.Fatal(err)
	}
	if !s4.Interval || s4.KeyType.Name != nftables.TypeIPAddr.Name {
		t.Errorf("set %s: interval %v type %s, want interval ipv4_addr", s4.Name, s4.Interval, s4.KeyType.Name)
	}
	els, err := c.GetSetElements(s4)
	if err != nil {
		t.Fatal(err)
	}
	if got := prefixesOf(els); !slices.Equal(got, pfx("198.18.1.2/32", "198.18.9.0/24")) {
		t.Errorf("set %s holds %v", s4.Name, got)
	}
	states, err := f.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 || states[0].Name != a.Name || states[0].VNI != 42 || states[0].Port != 4789 || states[0].Rules != 2 ||
		!slices.Equal(states[0].Allowed, pfx("198.18.1.2/32", "198.18.9.0/24", "fd00::2/128")) {
		t.Errorf("Read: %+v", states)
	}
	nftJSON(t, ns, a, b)

	if err := f.Remove(ctx, a.Name); err != nil {
		t.Fatal(err)
	}
	if rules, err := c.GetRules(tbl, ch); err != nil || len(rules) != 2 || ruleComment(rules[0]) != b.comment() {
		t.Errorf("after removing %s: rules %v, %v", a.Name, len(rules), err)
	}
	if _, err := c.GetSetByName(tbl, a.Name+"_v4"); err == nil {
		t.Errorf("set %s_v4 left after its network was removed", a.Name)
	}
	if err := f.Remove(ctx, b.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err == nil {
		t.Error("table left after its last network was removed")
	}
	if err := f.Remove(ctx, b.Name); err != nil {
		t.Errorf("removing again: %v", err)
	}
	if _, err := c.ListTableOfFamily("someone_else", nftables.TableFamilyINet); err != nil {
		t.Errorf("the other table is gone: %v", err)
	}
}

// nftList returns `nft -j list table` of the plugin's table in ns, and
// false where the nft executable is not installed (the plugin never runs
// it).
func nftList(t *testing.T, ns *testns.NS) (string, bool) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Log("nft not installed: the table is not read back with nft -j")
		return "", false
	}
	out, err := ns.Exec("nft", "-j", "list", "table", "inet", TableName)
	if err != nil {
		t.Fatal(err)
	}
	return out, true
}

// nftJSON reads the table with nft -j, where the nft executable is
// installed (the plugin never runs it): nft understands every rule, and
// sees the VNI match, the port and the sets.
func nftJSON(t *testing.T, ns *testns.NS, nets ...Network) {
	t.Helper()
	out, ok := nftList(t, ns)
	if !ok {
		return
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j: %v\n%s", err, out)
	}
	var rules []string
	for _, o := range doc.Nftables {
		if r, ok := o["rule"]; ok {
			rules = append(rules, string(r))
		}
	}
	if len(rules) != 2*len(nets) {
		t.Fatalf("nft -j lists %d rules, want %d:\n%s", len(rules), 2*len(nets), out)
	}
	text, err := ns.Exec("nft", "list", "table", "inet", TableName)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		for _, want := range []string{
			"udp dport " + strconv.Itoa(int(n.Port)),
			fmt.Sprintf("@th,96,24 %#x", n.VNI),
			"ip saddr != @" + n.Name + "_v4 counter packets 0 bytes 0 drop",
			"ip6 saddr != @" + n.Name + "_v6 counter packets 0 bytes 0 drop",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("nft list table lacks %q:\n%s", want, text)
			}
		}
	}
}

// Packets to the port carrying the VNI from a source not allowed are
// dropped and counted; from an allowed source, or with another VNI or to
// another port, they pass and are not counted. A new allow-list takes
// effect at once; IPv6 sources go by the IPv6 rule and set. Sync keeps a
// network whose port and VNI are unchanged with its counter, and removes
// the others.
func TestIntegrationDropsAndCounts(t *testing.T) {
	ns, f, _ := newFilter(t)
	ctx := t.Context()
	peer := testns.New(t)
	hostAddr, peerAddr := netip.MustParseAddr("198.18.20.1"), netip.MustParseAddr("198.18.20.2")
	host6, peer6 := netip.MustParseAddr("fd00:20::1"), netip.MustParseAddr("fd00:20::2")
	testns.Underlay(t, ns, peer, netip.PrefixFrom(hostAddr, 24), netip.PrefixFrom(peerAddr, 24), netip.PrefixFrom(host6, 64), netip.PrefixFrom(peer6, 64))
	n := Network{Name: "net1", Port: 4789, VNI: 42, Allowed: pfx("198.18.20.2/32")}
	if err := f.Install(ctx, n); err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:00:00:00:00:99")
	frame := vxlanpkt.ARPRequest(mac, netip.MustParseAddr("198.19.0.99"), netip.MustParseAddr("198.19.0.1"))
	send := func(vni uint32, port uint16, count int) {
		t.Helper()
		if err := vxlanpkt.Send(peer, peerAddr, netip.AddrPortFrom(hostAddr, port), vxlanpkt.Encap(vni, frame), count); err != nil {
			t.Fatal(err)
		}
	}
	dropped := func(want uint64) {
		t.Helper()
		testns.Eventually(t, 5*time.Second, 50*time.Millisecond, "drop counter", func() error {
			c, err := f.Dropped(ctx, n.Name)
			if err != nil {
				return err
			}
			if c.Packets != want {
				return errorf("dropped %d packets, want %d", c.Packets, want)
			}
			return nil
		})
	}
	if err := peer.Ping(hostAddr, 1); err != nil { // the neighbour entries: no packet waits in a queue
		t.Fatal(err)
	}
	rx := listen(t, ns, hostAddr)
	send(42, 4789, 3)
	receive(t, rx, 3) // an allowed source: delivered
	dropped(0)
	if err := f.SetAllowed(ctx, n.Name, pfx("198.18.21.0/24", "fd00::1/128")); err != nil {
		t.Fatal(err)
	}
	send(42, 4789, 5)
	dropped(5)
	send(43, 4789, 4) // another VNI
	send(42, 4790, 4) // another port
	time.Sleep(200 * time.Millisecond)
	dropped(5)

	// IPv6: a source not in the set is dropped by the IPv6 rule, counted
	// with the IPv4 one's; once allowed it is delivered.
	rx6 := listen(t, ns, host6)
	if err := peer.Ping(host6, 1); err != nil {
		t.Fatal(err)
	}
	send6 := func(count int) {
		t.Helper()
		if err := vxlanpkt.Send(peer, peer6, netip.AddrPortFrom(host6, 4789), vxlanpkt.Encap(42, frame), count); err != nil {
			t.Fatal(err)
		}
	}
	send6(2)
	dropped(7)
	if err := f.SetAllowed(ctx, n.Name, pfx("198.18.21.0/24", "fd00:20::/64")); err != nil {
		t.Fatal(err)
	}
	send6(2)
	receive(t, rx6, 2)
	dropped(7)

	other := Network{Name: "net2", Port: 4789, VNI: 43}
	if err := f.Sync(ctx, []Network{{Name: n.Name, Port: n.Port, VNI: n.VNI, Allowed: pfx("198.18.22.0/24")}, other}, nil); err != nil {
		t.Fatal(err)
	}
	dropped(7) // kept, with its counter
	send(43, 4789, 2)
	testns.Eventually(t, 5*time.Second, 50*time.Millisecond, "drop counter of net2", func() error {
		c, err := f.Dropped(ctx, other.Name)
		if err == nil && c.Packets != 2 {
			err = errorf("dropped %d, want 2", c.Packets)
		}
		return err
	})
	keepNet1 := func(name string) bool { return name == n.Name }
	if err := f.Sync(ctx, []Network{other}, keepNet1); err != nil {
		t.Fatal(err)
	}
	if c, err := f.Dropped(ctx, n.Name); err != nil || c.Packets != 7 {
		t.Errorf("net1 after a Sync that keeps it: %v, %v", c, err)
	}
	if err := f.Sync(ctx, []Network{other}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Dropped(ctx, n.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("net1 after a Sync without it: %v, want ErrNotFound", err)
	}
	if err := f.Sync(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	if st, err := f.Read(ctx); err != nil || len(st) != 0 {
		t.Errorf("after Sync(nil): %v, %v", st, err)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// listen opens a UDP socket on addr, port 4789, in ns, closed at cleanup.
func listen(t *testing.T, ns *testns.NS, addr netip.Addr) *net.UDPConn {
	t.Helper()
	var rx *net.UDPConn
	if err := ns.Do(func() (err error) {
		rx, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 4789)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	return rx
}

// receive waits for n packets on rx, each within 5 s.
func receive(t *testing.T, rx *net.UDPConn, n int) {
	t.Helper()
	for i := range n {
		_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := rx.ReadFromUDPAddrPort(make([]byte, 2048)); err != nil {
			t.Fatalf("packet %d of %d from an allowed source: %v", i+1, n, err)
		}
	}
}

// Hundreds of networks installed, given a second family and removed one
// by one; DroppedAll reads them all in one listing.
func TestIntegrationManyNetworks(t *testing.T) {
	_, f, _ := newFilter(t)
	ctx := t.Context()
	const n = 300
	for i := range n {
		nw := Network{Name: fmt.Sprintf("n%d", i), Port: 4789, VNI: uint32(1000 + i),
			Allowed: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(i%250 + 1)}), 32)}}
		if err := f.Install(ctx, nw); err != nil {
			t.Fatalf("install %d: %v", i, err)
		}
		if err := f.SetAllowed(ctx, nw.Name, append(nw.Allowed, netip.MustParsePrefix("fd00:18::/64"))); err != nil {
			t.Fatalf("allow %d: %v", i, err)
		}
	}
	all, err := f.DroppedAll(ctx)
	if err != nil || len(all) != n {
		t.Fatalf("DroppedAll: %d networks, %v; want %d", len(all), err, n)
	}
	for i := range n {
		if err := f.Remove(ctx, fmt.Sprintf("n%d", i)); err != nil {
			t.Fatalf("remove %d: %v", i, err)
		}
	}
	if st, err := f.Read(ctx); err != nil || len(st) != 0 {
		t.Fatalf("after removing every network: %d left, %v", len(st), err)
	}
}

// A change to one network reads that network's sets and rules, never a
// listing of the table's rules, as long as each rule has the handle after
// its set's; a network whose rules were made again (another VNI), whose
// rules someone else removed, or whose set someone else's rule also looks
// up, is found by a listing instead, and handled as before.
func TestIntegrationOneNetworkWithoutListing(t *testing.T) {
	_, f, c := newFilter(t)
	ctx := t.Context()
	const n = 40
	for i := range n {
		if err := f.Install(ctx, benchNetwork(i)); err != nil {
			t.Fatalf("install %d: %v", i, err)
		}
	}
	listed := func(what string, want int) {
		t.Helper()
		if f.listings != want {
			t.Errorf("%s: %d listings of the rules, want %d", what, f.listings, want)
		}
	}
	listed("installs", 0)
	if err := f.Install(ctx, benchNetwork(0)); err != nil { // unchanged: its rules kept
		t.Fatal(err)
	}
	if err := f.SetAllowed(ctx, "n1", pfx("198.18.30.0/24", "fd00:30::/64")); err != nil {
		t.Fatal(err)
	}
	if c, err := f.Dropped(ctx, "n2"); err != nil || c != (Counter{}) {
		t.Errorf("Dropped: %v, %v", c, err)
	}
	if _, err := f.Dropped(ctx, "n99"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Dropped of a network not there: %v, want ErrNotFound", err)
	}
	for i := 20; i < n; i++ {
		if err := f.Remove(ctx, fmt.Sprintf("n%d", i)); err != nil {
			t.Fatalf("remove %d: %v", i, err)
		}
	}
	listed("changes to one network", 0)
	states, err := f.Read(ctx)
	if err != nil || len(states) != 20 {
		t.Fatalf("Read: %d networks, %v; want 20", len(states), err)
	}
	for _, st := range states {
		if st.Rules != 2 {
			t.Errorf("%s: %d rules", st.Name, st.Rules)
		}
	}
	f.listings = 0

	// n3's rules made again for another VNI: found by a listing, removed
	// with its sets.
	n3 := benchNetwork(3)
	n3.VNI = 7
	if err := f.Install(ctx, n3); err != nil {
		t.Fatal(err)
	}
	listed("n3 for another VNI", 0)
	if st := readOne(t, f, "n3"); st.VNI != 7 || st.Rules != 2 {
		t.Errorf("n3 for another VNI: %+v", st)
	}
	f.listings = 0
	if err := f.Remove(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	listed("removing n3", 1)
	if st := readOne(t, f, "n3"); st != nil {
		t.Errorf("n3 left: %+v", st)
	}
	if _, err := c.GetSetByName(f.table, "n3_v4"); err == nil {
		t.Error("set n3_v4 left")
	}

	// n4's rules removed by someone else: installing it again makes them.
	rules, err := c.GetRules(f.table, f.chain)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if nw, _ := parseComment(ruleComment(r)); nw.Name == "n4" {
			if err := c.DelRule(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Install(ctx, benchNetwork(4)); err != nil {
		t.Fatal(err)
	}
	if st := readOne(t, f, "n4"); st == nil || st.Rules != 2 {
		t.Errorf("n4 installed again: %+v", st)
	}

	// A third rule of n5's, made by someone else, looks its set up too:
	// the first removal fails on the set in use, the second lists.
	n5 := benchNetwork(5)
	c.AddRule(rule(f.chain, &n5, families[0], &nftables.Set{Name: "n5_v4"}))
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	f.listings = 0
	if err := f.Remove(ctx, "n5"); err != nil {
		t.Fatal(err)
	}
	listed("removing n5 with a third rule", 1)
	if st := readOne(t, f, "n5"); st != nil {
		t.Errorf("n5 left: %+v", st)
	}

	for _, st := range readAll(t, f) {
		if err := f.Remove(ctx, st.Name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err == nil {
		t.Error("table left after its last network was removed")
	}
}

// readAll reads every network of the table.
func readAll(t *testing.T, f *Filter) []State {
	t.Helper()
	states, err := f.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return states
}

// readOne reads the network called name, or nil.
func readOne(t *testing.T, f *Filter, name string) *State {
	t.Helper()
	for _, st := range readAll(t, f) {
		if st.Name == name {
			return &st
		}
	}
	return nil
}

// manyPrefixes returns n disjoint prefixes: IPv6 /128s (every other
// address of fd00::/112), or IPv4 /32s (of 198.18.0.0/16).
func manyPrefixes(n int, v6 bool) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		if v6 {
			out[i] = netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i >> 7), 15: byte(i << 1)}), 128)
		} else {
			out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 7), byte(i << 1)}), 32)
		}
	}
	return out
}

// Allow-lists of thousands of sources, whose elements are more than one
// netlink attribute holds (64 KiB: about 1000 IPv6 or 2700 IPv4 ranges),
// are made whole by Install, SetAllowed and Sync; they once had their
// attribute's length wrap, and the kernel took a few of them and reported
// success.
func TestIntegrationLargeAllowList(t *testing.T) {
	ns, f, _ := newFilter(t)
	ctx := t.Context()
	a := Network{Name: "a", Port: 4789, VNI: 1, Allowed: manyPrefixes(2000, true)}
	b := Network{Name: "b", Port: 4789, VNI: 2, Allowed: pfx("198.19.0.1/32")}
	for _, n := range []Network{a, b} {
		if err := f.Install(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	checkTable(t, ns, f, []Network{a, b})
	a.Allowed = manyPrefixes(3500, false)
	if err := f.SetAllowed(ctx, a.Name, a.Allowed); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, f, []Network{a, b})
	a.Allowed = append(manyPrefixes(1500, true), manyPrefixes(10, false)...)
	b.Allowed = manyPrefixes(1200, true)
	if err := f.Sync(ctx, []Network{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, f, []Network{a, b})
}
