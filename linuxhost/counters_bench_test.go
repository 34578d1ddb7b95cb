package linuxhost

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// BenchmarkCounters4096 reads the counters of 4096 networks, each a vxlan
// link in a bridge with a peer in its FDB: the kernel's part of one scrape
// (two dumps). Needs root.
func BenchmarkCounters4096(b *testing.B) {
	const networks = 4096
	ns := underlayNS(b)
	c := ns.Dial()
	h := New(c)
	vx := vxlan.New(c)
	ctx := b.Context()
	specs := make([]*fabric.NetworkSpec, networks)
	peer := netip.MustParseAddr("198.18.4.2")
	for i := range networks {
		br, err := c.CreateLink(ctx, &rtlink.Link{Name: fmt.Sprintf("br%d", i), Up: true, Data: &rtlink.Bridge{}})
		if err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("vx%d", i)
		if _, err := c.CreateLink(ctx, &rtlink.Link{Name: name, MasterIndex: br.Index, Up: true,
			Data: &rtlink.VXLAN{ID: rtlink.Ptr(uint32(i + 1)), Port: rtlink.Ptr[uint16](4789)}}); err != nil {
			b.Fatal(err)
		}
		if err := vx.AddPeer(ctx, name, peer); err != nil {
			b.Fatal(err)
		}
		specs[i] = &fabric.NetworkSpec{ID: fmt.Sprintf("%064x", i), Kind: fabric.KindBridge, VXLAN: vxlan.Config{Name: name}}
	}
	b.Run("Counters", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := h.Counters(ctx, specs)
			if err != nil || len(got) != networks || got[specs[0].ID].FDBPeers != 1 {
				b.Fatalf("%d networks' counters, %v", len(got), err)
			}
		}
	})
	// Its two dumps alone.
	b.Run("LinkDump", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got, err := c.LinkCounters(ctx, "vxlan"); err != nil || len(got) != networks {
				b.Fatalf("%d links, %v", len(got), err)
			}
		}
	})
	b.Run("FDBDump", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Neighs(ctx, rtlink.FamilyBridge, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
