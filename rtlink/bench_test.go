package rtlink_test

import (
	"fmt"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// BenchmarkListLinks lists a namespace holding 2000 networks' links (a
// vxlan link as the port of a bridge each), with Links and with
// BriefLinks, which leaves the kind-specific attributes undecoded.
func BenchmarkListLinks(b *testing.B) {
	const networks = 2000
	ns := testns.New(b)
	c := ns.Dial()
	for i := range networks {
		br := fmt.Sprintf("br%d", i)
		got, err := c.CreateLink(ctx, &rtlink.Link{Name: br, Alias: "bench " + br, Data: &rtlink.Bridge{}})
		if err != nil {
			b.Fatal(err)
		}
		vx := &rtlink.Link{Name: fmt.Sprintf("vx%d", i), MasterIndex: got.Index, Alias: "bench vx", Data: &rtlink.VXLAN{ID: rtlink.Ptr(uint32(i + 1)), Port: rtlink.Ptr[uint16](4789)}}
		if _, err := c.CreateLink(ctx, vx); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		list func() ([]*rtlink.Link, error)
	}{
		{"Links", func() ([]*rtlink.Link, error) { return c.Links(ctx, "") }},
		{"BriefLinks", func() ([]*rtlink.Link, error) { return c.BriefLinks(ctx) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				links, err := bc.list()
				if err != nil || len(links) != 2*networks+1 {
					b.Fatalf("%d links, %v", len(links), err)
				}
			}
		})
	}
}
