package vtepfilter

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

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
	if _, err := exec.LookPath("nft"); err != nil {
		t.Log("nft not installed: the table is not read back with nft -j")
		return
	}
	out, err := ns.Exec("nft", "-j", "list", "table", "inet", TableName)
	if err != nil {
		t.Fatal(err)
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
