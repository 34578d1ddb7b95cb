package vtepfilter

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/vxlanpkt"
)

// syncNetwork is the i-th network of the Sync tests: VNI 1000+i, one
// IPv4 and one IPv6 source admitted, so that both its sets hold something.
func syncNetwork(i int) Network {
	return Network{Name: fmt.Sprintf("s%04d", i), Port: 4789, VNI: uint32(1000 + i), Allowed: []netip.Prefix{
		netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(i%250 + 1)}), 32),
		netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 2: 0, 3: 0x18, 14: byte(i >> 8), 15: byte(i)}), 128),
	}}
}

// checkTable reads the table back, with the package's own reader and with
// nft -j where nft is installed, and fails unless it holds exactly nets:
// each with its two rules (port, VNI), its two sets and their elements.
func checkTable(t *testing.T, ns *testns.NS, f *Filter, nets []Network) {
	t.Helper()
	states, err := f.Read(t.Context())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := slices.Clone(nets)
	slices.SortFunc(want, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	if len(states) != len(want) {
		t.Fatalf("Read: %d networks, want %d", len(states), len(want))
	}
	for i, st := range states {
		n := want[i]
		v4, v6 := splitFamilies(n.Allowed)
		if st.Name != n.Name || st.Port != n.Port || st.VNI != n.VNI || st.Rules != 2 || !slices.Equal(st.Allowed, append(v4, v6...)) {
			t.Fatalf("Read: network %d is %+v, want %+v", i, st, n)
		}
	}
	out, ok := nftList(t, ns)
	if !ok {
		return
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Table string          `json:"table"`
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Elem  json.RawMessage `json:"elem"`
			} `json:"set"`
			Rule *struct {
				Table   string `json:"table"`
				Chain   string `json:"chain"`
				Comment string `json:"comment"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j: %v", err)
	}
	sets := map[string]string{} // name: its elements as JSON
	rules := map[string]int{}   // comment: how many
	for _, o := range doc.Nftables {
		if s := o.Set; s != nil && s.Table == TableName {
			sets[s.Name] = string(s.Elem)
		}
		if r := o.Rule; r != nil && r.Table == TableName && r.Chain == ChainName {
			rules[r.Comment]++
		}
	}
	if len(sets) != 2*len(nets) || len(rules) != len(nets) {
		t.Fatalf("nft -j lists %d sets and rules of %d comments, want %d and %d", len(sets), len(rules), 2*len(nets), len(nets))
	}
	for _, n := range nets {
		if c := rules[n.comment()]; c != 2 {
			t.Fatalf("nft -j: %d rules %q, want 2", c, n.comment())
		}
		v4, v6 := splitFamilies(n.Allowed)
		for i, ps := range [][]netip.Prefix{v4, v6} {
			name := n.Name + families[i].suffix
			els, ok := sets[name]
			if !ok {
				t.Fatalf("nft -j: no set %s", name)
			}
			for _, p := range ps {
				if !strings.Contains(els, `"`+p.Addr().String()+`"`) {
					t.Fatalf("nft -j: set %s lacks %v: %s", name, p, els)
				}
			}
		}
	}
}

// Sync builds the table from nothing for 1, 29, 30 (the first count whose
// kernel answers overflowed the socket's buffer when Sync was one
// transaction), 200 (a batch past the socket's send buffer) and 4096
// networks (a host's most). A second Sync drops half of them, gives a
// quarter of the rest another VNI and another quarter another
// allow-list, and adds new ones: the rules of the networks whose port and
// VNI are unchanged keep their counters, and the table holds exactly the
// second set of networks. The largest count is skipped with -short.
func TestIntegrationSyncMany(t *testing.T) {
	for _, n := range []int{1, 29, 30, 200, 4096} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			if n > 200 && testing.Short() {
				t.Skip("-short")
			}
			syncMany(t, n)
		})
	}
}

func syncMany(t *testing.T, n int) {
	ns, f, _ := newFilter(t)
	ctx := t.Context()
	nets := make([]Network, n)
	for i := range nets {
		nets[i] = syncNetwork(i)
	}
	start := time.Now()
	if err := f.Sync(ctx, nets, nil); err != nil {
		t.Fatalf("Sync of %d networks: %v", n, err)
	}
	t.Logf("Sync of %d networks into an empty table: %v", n, time.Since(start))
	start = time.Now()
	checkTable(t, ns, f, nets)
	t.Logf("read back: %v", time.Since(start))

	// Dropped packets for every network: the counters the second Sync
	// keeps. The peer's address is in no network's allow-list.
	peer := testns.New(t)
	hostAddr, peerAddr := netip.MustParseAddr("198.19.255.1"), netip.MustParseAddr("198.19.255.2")
	testns.Underlay(t, ns, peer, netip.MustParsePrefix("198.19.255.1/24"), netip.MustParsePrefix("198.19.255.2/24"))
	if err := peer.Ping(hostAddr, 1); err != nil {
		t.Fatal(err)
	}
	sent := sendEach(t, peer, peerAddr, hostAddr, nets)
	var before map[string]Counter
	testns.Eventually(t, 10*time.Second, 100*time.Millisecond, "drop counters", func() (err error) {
		before, err = f.DroppedAll(ctx)
		if err != nil {
			return err
		}
		for name, c := range sent {
			if before[name].Packets != c {
				return fmt.Errorf("%s dropped %d packets, want %d", name, before[name].Packets, c)
			}
		}
		return nil
	})

	// The second Sync: the upper half dropped, a quarter of the rest with
	// another VNI (rules made again), a quarter with another allow-list
	// (rules kept), n/8+1 new networks.
	var next []Network
	changedVNI := map[string]bool{}
	for i, nw := range nets[:(n+1)/2] {
		switch i % 4 {
		case 1:
			nw.VNI += 100000
			changedVNI[nw.Name] = true
		case 2:
			nw.Allowed = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 200, byte(i)}), 32), netip.MustParsePrefix("198.19.0.0/24")}
		}
		next = append(next, nw)
	}
	for i := range n/8 + 1 {
		nw := syncNetwork(5000 + i)
		next = append(next, nw)
	}
	start = time.Now()
	if err := f.Sync(ctx, next, nil); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	t.Logf("second Sync (%d kept, %d with another VNI, %d new, %d removed): %v", len(nets[:(n+1)/2]), len(changedVNI), n/8+1, n-(n+1)/2, time.Since(start))
	checkTable(t, ns, f, next)
	after, err := f.DroppedAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, nw := range next {
		want := before[nw.Name] // zero for a new network
		if changedVNI[nw.Name] {
			want = Counter{}
		}
		if after[nw.Name] != want {
			t.Errorf("%s after the second Sync: dropped %+v, want %+v", nw.Name, after[nw.Name], want)
		}
		if want.Packets > 0 {
			kept++
		}
	}
	if kept == 0 {
		t.Error("no network kept a counter above 0: the test proves nothing")
	}
}

// sendEach sends, from the peer at src to dst port 4789, 1 to 3 VXLAN
// packets with each network's VNI, and returns how many per network.
func sendEach(t *testing.T, peer *testns.NS, src, dst netip.Addr, nets []Network) map[string]uint64 {
	t.Helper()
	mac, _ := net.ParseMAC("02:00:00:00:00:99")
	frame := vxlanpkt.ARPRequest(mac, netip.MustParseAddr("198.19.0.99"), netip.MustParseAddr("198.19.0.1"))
	sent := map[string]uint64{}
	err := peer.Do(func() error {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		if err != nil {
			return err
		}
		defer c.Close()
		for i, nw := range nets {
			pkt := vxlanpkt.Encap(nw.VNI, frame)
			for range 1 + i%3 {
				if _, err := c.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(dst, 4789)); err != nil {
					return err
				}
				sent[nw.Name]++
			}
			if i%64 == 63 {
				time.Sleep(time.Millisecond) // the receiving side's backlog
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sent
}

// After an error on the lasting connection of the transactions, each
// later call reports its own result: a missing network's change fails
// with ErrNotFound, an existing one's succeeds and is applied. The errors:
// the kernel's answers to one transaction overflowing the socket's buffer
// (ENOBUFS, the transaction applied: how Sync of 30 networks failed when
// it was one transaction, and left the answers of that one for the next
// to take as its own), a batch longer than the socket's send buffer
// (EMSGSIZE, nothing sent), and the kernel's refusals (ENOENT, and a
// network's set made by someone else with another type: Sync makes the
// others, and names that one).
func TestIntegrationAfterErrors(t *testing.T) {
	ns, f, c := newFilter(t)
	ctx := t.Context()
	var nets []Network
	for i := range 3 {
		nets = append(nets, syncNetwork(i))
		if err := f.Install(ctx, nets[i]); err != nil {
			t.Fatal(err)
		}
	}
	// check has the filter report its calls' own results, and apply them.
	step := 0
	check := func(after string) {
		t.Helper()
		step++
		if err := f.SetAllowed(ctx, "missing", pfx("198.18.99.1/32")); !errors.Is(err, ErrNotFound) {
			t.Errorf("after %s: SetAllowed of a missing network: %v, want ErrNotFound", after, err)
		}
		if _, err := f.Dropped(ctx, "missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after %s: Dropped of a missing network: %v, want ErrNotFound", after, err)
		}
		allowed := pfx(fmt.Sprintf("198.18.98.%d/32", step))
		if err := f.SetAllowed(ctx, nets[0].Name, allowed); err != nil {
			t.Errorf("after %s: SetAllowed of %s: %v", after, nets[0].Name, err)
		}
		nets[0].Allowed = allowed
		extra := syncNetwork(3000 + step)
		if err := f.Install(ctx, extra); err != nil {
			t.Errorf("after %s: Install: %v", after, err)
		}
		if err := f.SetAllowed(ctx, "missing", nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("after %s: SetAllowed of a missing network again: %v, want ErrNotFound", after, err)
		}
		if err := f.Remove(ctx, extra.Name); err != nil {
			t.Errorf("after %s: Remove: %v", after, err)
		}
		if err := f.Remove(ctx, "missing"); err != nil {
			t.Errorf("after %s: Remove of a missing network: %v", after, err)
		}
	}
	// queued leaves a batch of the makings of networks first..first+n-1 on
	// the lasting connection, and sends it.
	queued := func(first, n int) error {
		t.Helper()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.conn.AddTable(f.table)
		f.conn.AddChain(f.chain)
		for i := range n {
			nw := syncNetwork(first + i)
			ch := planNetwork(&nw, nil, [2]bool{})
			if err := f.queue(&ch); err != nil {
				t.Fatal(err)
			}
		}
		return f.flush()
	}

	check("nothing")
	checkTable(t, ns, f, nets)

	// ENOBUFS: 60 networks' answers, 361, overflow the receive buffer;
	// the transaction is applied all the same.
	renewals := f.renewals
	if err := queued(100, 60); !errors.Is(err, unix.ENOBUFS) {
		t.Fatalf("60 networks in one transaction: %v, want ENOBUFS", err)
	}
	if f.renewals != renewals+1 {
		t.Errorf("%d connections opened again after ENOBUFS, want 1", f.renewals-renewals)
	}
	check("ENOBUFS")
	for i := range 60 {
		nets = append(nets, syncNetwork(100+i))
	}
	checkTable(t, ns, f, nets)

	// EMSGSIZE: 300 networks' batch is longer than the send buffer;
	// nothing is sent.
	if err := queued(1000, 300); !errors.Is(err, unix.EMSGSIZE) {
		t.Fatalf("300 networks in one transaction: %v, want EMSGSIZE", err)
	}
	check("EMSGSIZE")
	checkTable(t, ns, f, nets)

	// ENOENT, alone and over and over.
	for range 3 {
		check("ENOENT")
	}

	// Someone else's set with a network's name and another type: the
	// kernel refuses that network's transaction; Sync makes the others and
	// names it.
	foreign := &nftables.Set{Table: f.table, Name: "s0180_v4", KeyType: nftables.TypeIP6Addr}
	if err := c.AddSet(foreign, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	var want []Network
	for i := range 200 {
		want = append(want, syncNetwork(i))
	}
	want[0].Allowed = nets[0].Allowed
	err := f.Sync(ctx, want, nil)
	if err == nil || !strings.Contains(err.Error(), "1 of 200 networks failed (s0180)") {
		t.Fatalf("Sync with a network whose set is someone else's: %v, want s0180's failure", err)
	}
	t.Logf("Sync with a network whose set is someone else's: %v", err)
	check("a Sync that failed for one network")
	if s, err := c.GetSetByName(f.table, foreign.Name); err != nil || s.KeyType.Name != nftables.TypeIP6Addr.Name {
		t.Errorf("someone else's set: %+v, %v", s, err)
	}
	c.DelSet(foreign)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	want[0].Allowed = nets[0].Allowed // check changed it
	want = slices.Delete(want, 180, 181)
	checkTable(t, ns, f, want)
}
