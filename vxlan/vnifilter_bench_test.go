package vxlan_test

import (
	"net/netip"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// BenchmarkAddDeleteVNIRange: a range of 1000 VNIs added to a VNI filtering
// device and deleted again, two requests (plus the listings each call makes)
// instead of 1000 vxlan links.
func BenchmarkAddDeleteVNIRange(b *testing.B) {
	_, c := benchHost(b)
	if err := c.Create(ctx, vxlan.Config{Name: "vf0", CollectMetadata: true, VNIFilter: true, Up: true}); err != nil {
		testns.SkipMissingFeature(b, "vnifilter", err)
	}
	r := vxlan.VNIRange{First: 1000, Last: 1999}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.AddVNI(ctx, "vf0", r); err != nil {
			b.Fatal(err)
		}
		if err := c.DeleteVNI(ctx, "vf0", r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVNIs: listing a device with 4000 VNIs, each with a remote of its
// own so the kernel cannot fold them into ranges.
func BenchmarkVNIs(b *testing.B) {
	_, c := benchHost(b)
	if err := c.Create(ctx, vxlan.Config{Name: "vf0", CollectMetadata: true, VNIFilter: true}); err != nil {
		testns.SkipMissingFeature(b, "vnifilter", err)
	}
	var rs []vxlan.VNIRange
	for i := range 4000 {
		rs = append(rs, vxlan.VNIRange{First: uint32(i + 1), Group: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})})
	}
	for i := 0; i < len(rs); i += 500 {
		if err := c.AddVNI(ctx, "vf0", rs[i:i+500]...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := c.VNIs(ctx, "vf0")
		if err != nil || len(got) != 4000 {
			b.Fatalf("%d VNIs, %v", len(got), err)
		}
	}
}
