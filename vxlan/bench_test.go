package vxlan_test

import (
	"fmt"
	"net/netip"
	"os/exec"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// benchGroup is the link group benchmark links are put in, so they can be
// removed in one request outside the timed part.
const benchGroup = 77

func benchHost(b *testing.B) (*testns.NS, *vxlan.Client) {
	b.Helper()
	ns := testns.New(b)
	return ns, vxlan.New(ns.Dial())
}

func cleanupGroup(b *testing.B, c *vxlan.Client) {
	b.Helper()
	if err := c.Conn().DeleteLinkGroup(ctx, benchGroup); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCreate: one vxlan link created through the library (netlink
// request, plus the read-back that CreateLink does).
// The links go when the namespace does.
func BenchmarkCreate(b *testing.B) {
	_, c := benchHost(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := c.Create(ctx, vxlan.Config{Name: fmt.Sprintf("vx%d", i), VNI: uint32(i + 1)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateIP: the same link made by exec'ing `ip link add`.
func BenchmarkCreateIP(b *testing.B) {
	ns, _ := benchHost(b)
	for i := 0; b.Loop(); i++ {
		if out, err := exec.Command("ip", "-n", ns.Name, "link", "add", fmt.Sprintf("vx%d", i), "type", "vxlan", "id", fmt.Sprint(i+1), "dstport", "4789").CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}

// makeLinks creates n vxlan links named vx0..vx(n-1) in the benchmark group.
func makeLinks(b *testing.B, c *vxlan.Client, n int) {
	b.Helper()
	for i := 0; i < n; i++ {
		if err := c.Create(ctx, vxlan.Config{Name: fmt.Sprintf("vx%d", i), VNI: uint32(i + 1)}); err != nil {
			b.Fatal(err)
		}
		if err := c.Conn().SetLinkGroup(ctx, fmt.Sprintf("vx%d", i), benchGroup); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDelete: one vxlan link deleted through the library. The kernel
// waits for an RCU grace period on each delete (about 16 ms here), which is
// the floor of this number.
func BenchmarkDelete(b *testing.B) {
	_, c := benchHost(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		makeLinks(b, c, 1)
		b.StartTimer()
		if err := c.Delete(ctx, "vx0"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeleteIP: the same through `ip link del`.
func BenchmarkDeleteIP(b *testing.B) {
	ns, c := benchHost(b)
	for b.Loop() {
		b.StopTimer()
		makeLinks(b, c, 1)
		b.StartTimer()
		if out, err := exec.Command("ip", "-n", ns.Name, "link", "del", "vx0").CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}

// BenchmarkDeleteGroupOf100: 100 links deleted in one DeleteLinkGroup
// request; the time per link is reported as ns/link.
func BenchmarkDeleteGroupOf100(b *testing.B) {
	_, c := benchHost(b)
	for b.Loop() {
		b.StopTimer()
		makeLinks(b, c, 100)
		b.StartTimer()
		cleanupGroup(b, c)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/link")
}

// BenchmarkFDBAppendDelete: one head-end replication peer added and removed.
func BenchmarkFDBAppendDelete(b *testing.B) {
	_, c := benchHost(b)
	if err := c.Create(ctx, vxlan.Config{Name: "vx0", VNI: 1}); err != nil {
		b.Fatal(err)
	}
	peer := netip.MustParseAddr("198.18.9.9")
	b.ReportAllocs()
	for b.Loop() {
		if err := c.AddPeer(ctx, "vx0", peer); err != nil {
			b.Fatal(err)
		}
		if err := c.RemovePeer(ctx, "vx0", peer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet: Get by name with 1, 100 and 1000 vxlan links present. The
// cost must stay flat: the kernel looks the name up, nothing is dumped.
func BenchmarkGet(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("links=%d", n), func(b *testing.B) {
			_, c := benchHost(b)
			makeLinks(b, c, n)
			name := fmt.Sprintf("vx%d", n/2)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Get(ctx, name); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cleanupGroup(b, c)
		})
	}
}

// BenchmarkUpdateTTL: a live link's TTL changed in place (read, compare,
// one changelink request).
func BenchmarkUpdateTTL(b *testing.B) {
	c, cfg := benchOneLink(b)
	for i := 0; b.Loop(); i++ {
		cfg.TTL = uint8(i%254 + 1)
		if _, err := c.Update(ctx, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecreateTTL: the same change made the other way, by deleting and
// creating the link again.
func BenchmarkRecreateTTL(b *testing.B) {
	c, cfg := benchOneLink(b)
	for i := 0; b.Loop(); i++ {
		cfg.TTL = uint8(i%254 + 1)
		if err := c.Delete(ctx, cfg.Name); err != nil {
			b.Fatal(err)
		}
		if err := c.Create(ctx, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// benchOneLink makes the vxlan link vx0 in a namespace of its own.
func benchOneLink(b *testing.B) (*vxlan.Client, vxlan.Config) {
	b.Helper()
	_, c := benchHost(b)
	cfg := vxlan.Config{Name: "vx0", VNI: 1}
	if err := c.Create(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	return c, cfg
}
