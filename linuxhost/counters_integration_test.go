package linuxhost

import (
	"encoding/json"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/netfault"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// TestIntegrationCounters reads a network's vxlan link counters and FDB
// from the kernel and compares them with iproute2's; the released-link
// count and the deletion observer follow a network's deletion.
func TestIntegrationCounters(t *testing.T) {
	ns := underlayNS(t)
	var mu sync.Mutex
	var observed []int
	var hold atomic.Bool // the kernel refuses the background deletion while set
	conn := ns.DialFaulty(func(r netfault.Request) error {
		if r.Op == rtlink.OpDeleteLinkGroup && hold.Load() {
			return errInjected
		}
		return nil
	})
	h := New(conn, WithDeletionObserver(func(links int, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if took <= 0 {
			t.Errorf("a deletion of %d links took %s", links, took)
		}
		observed = append(observed, links)
	}))
	ctx := t.Context()
	a, b := bridgeNetwork(t, h, "c0aaaaaaaaaa", 4101, 1), bridgeNetwork(t, h, "c0bbbbbbbbbb", 4102, 2)
	a.Peers = []netip.Addr{netip.MustParseAddr("198.18.4.2"), netip.MustParseAddr("198.18.4.3")}
	parent := &fabric.NetworkSpec{ID: "c0cccccccccc", Kind: fabric.KindParent}
	for _, s := range []*fabric.NetworkSpec{a, b} {
		if err := h.CreateNetwork(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range a.Peers {
		if err := h.AddPeer(ctx, a, p); err != nil {
			t.Fatal(err)
		}
	}
	ns.IP("link", "set", a.Bridge.Name, "up")
	ns.IP("link", "set", a.VXLAN.Name, "up")
	ns.IP("addr", "add", "198.19.1.2/24", "dev", a.Bridge.Name) // a second address to send from
	_, _ = ns.Exec("ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", a.Bridge.Name, "198.19.1.9")

	got, err := h.Counters(ctx, []*fabric.NetworkSpec{a, b, parent})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[parent.ID] != nil {
		t.Fatalf("counters of %d networks (%v), want a and b only", len(got), got)
	}
	fdb := func(dev string) (all, peers int) {
		var entries []struct {
			MAC   string   `json:"mac"`
			Flags []string `json:"flags"`
		}
		out, err := testns.Run("bridge", "-n", ns.Name, "-j", "fdb", "show", "dev", dev)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out), &entries); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			self := false
			for _, f := range e.Flags {
				self = self || f == "self"
			}
			if self {
				all++
				if e.MAC == "00:00:00:00:00:00" {
					peers++
				}
			}
		}
		return all, peers
	}
	type txStats struct{ Packets, Bytes uint64 }
	tx := func(dev string) txStats {
		var st []struct {
			Stats64 struct {
				TX txStats `json:"tx"`
			} `json:"stats64"`
		}
		if err := json.Unmarshal([]byte(ns.IP("-s", "-j", "link", "show", "dev", dev)), &st); err != nil || len(st) != 1 {
			t.Fatal(err)
		}
		return st[0].Stats64.TX
	}
	for _, s := range []*fabric.NetworkSpec{a, b} {
		c := got[s.ID]
		all, peers := fdb(s.VXLAN.Name)
		if c.Link != s.VXLAN.Name || c.FDBEntries != all || c.FDBPeers != peers {
			t.Errorf("%s: %+v; bridge fdb show: %d self entries, %d peers", s.VXLAN.Name, c, all, peers)
		}
		// A read between two equal readings of ip is compared: the
		// bridge's own IPv6 packets may be flooded out meanwhile.
		for try := 0; ; try++ {
			before := tx(s.VXLAN.Name)
			again, err := h.Counters(ctx, []*fabric.NetworkSpec{s})
			if err != nil {
				t.Fatal(err)
			}
			if tx(s.VXLAN.Name) != before {
				if try == 10 {
					t.Fatalf("%s: its counters kept changing", s.VXLAN.Name)
				}
				continue
			}
			if tr := again[s.ID].Traffic; tr.TxPackets != before.Packets || tr.TxBytes != before.Bytes {
				t.Errorf("%s: traffic %+v; ip -s: %+v", s.VXLAN.Name, tr, before)
			}
			break
		}
	}
	if got[a.ID].FDBPeers != 2 {
		t.Errorf("network a has %d peers in its FDB, want 2", got[a.ID].FDBPeers)
	}
	if got[a.ID].Traffic.TxPackets == 0 {
		t.Errorf("network a's vxlan link sent nothing after pings flooded to two peers: %+v", got[a.ID].Traffic)
	}

	if n := h.Released(); n != 0 {
		t.Fatalf("%d links released before any deletion", n)
	}
	hold.Store(true)
	if err := h.DeleteNetwork(ctx, b, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * reapDelay) // the background deletion tried, and failed
	if n := h.Released(); n != 2 {
		t.Errorf("%d links released after a bridge network's deletion, want 2 (vxlan link and bridge)", n)
	}
	mu.Lock()
	if len(observed) != 0 {
		t.Errorf("the observer was told of deletions %v that the kernel refused", observed)
	}
	mu.Unlock()
	hold.Store(false)
	drain(t, h)
	if n := h.Released(); n != 0 {
		t.Errorf("%d links released after the drain", n)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range observed {
		total += n
	}
	if total != 2 {
		t.Errorf("the observer was told of deletions of %v links, want 2 in all", observed)
	}
}
