package vxlan_test

import (
	"errors"
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Peers and static MACs with their own VNI, port and via device, as the
// kernel and iproute2 show them; removing needs the same options.
func TestIntegrationAddPeerOptions(t *testing.T) {
	ns, c := host(t)
	if err := c.Create(ctx, vxlan.Config{Name: "vx0", VNI: 5, Local: mustAddr("198.18.1.1")}); err != nil {
		t.Fatal(err)
	}
	peer, mac := mustAddr("198.18.1.2"), net.HardwareAddr{2, 0, 0, 0, 0, 9}
	opts := []vxlan.FDBOption{vxlan.WithVNI(77), vxlan.WithPort(1234), vxlan.WithVia("ul0")}
	if err := c.AddPeer(ctx, "vx0", peer, opts...); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPeer(ctx, "vx0", mustAddr("198.18.1.3")); err != nil { // the form existing callers use
		t.Fatal(err)
	}
	if err := c.AddStaticMAC(ctx, "vx0", mac, peer, vxlan.WithVNI(78)); err != nil {
		t.Fatal(err)
	}
	got := map[string]bridgeFDB{}
	for _, e := range fdbJSON(t, ns, "vx0") {
		got[e.MAC+" "+e.Dst] = e
	}
	if e := got["00:00:00:00:00:00 198.18.1.2"]; e.VNI != 77 || e.Port != 1234 || e.Via != "ul0" || e.State != "permanent" {
		t.Errorf("peer with options: bridge shows %+v", e)
	}
	if e := got["00:00:00:00:00:00 198.18.1.3"]; e.VNI != 0 || e.Port != 0 || e.Via != "" {
		t.Errorf("plain peer: bridge shows %+v", e)
	}
	if e := got[mac.String()+" 198.18.1.2"]; e.VNI != 78 {
		t.Errorf("static MAC: bridge shows %+v", e)
	}
	entries, err := c.FDB(ctx, "vx0")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Remote == peer && e.IsPeer() && (e.VNI != 77 || e.Port != 1234 || e.Via != "ul0" || e.Kind() != vxlan.FDBPeer) {
			t.Errorf("FDB decodes the peer as %+v", e)
		}
	}
	// The kernel matches VNI, port and via too: without them nothing goes.
	if err := c.RemovePeer(ctx, "vx0", peer); err != nil {
		t.Fatal(err)
	}
	if len(fdbJSON(t, ns, "vx0")) != 3 {
		t.Fatal("RemovePeer without the options removed the entry")
	}
	if err := c.RemovePeer(ctx, "vx0", peer, opts...); err != nil {
		t.Fatal(err)
	}
	if n := len(fdbJSON(t, ns, "vx0")); n != 2 {
		t.Fatalf("%d entries left, want 2", n)
	}
	if err := c.AddPeer(ctx, "vx0", peer, vxlan.WithVia("nosuch")); !errors.Is(err, vxlan.ErrNotFound) {
		t.Fatalf("via a missing device: %v", err)
	}
	if err := c.AddPeer(ctx, "vx0", peer, vxlan.WithVNI(1<<24)); !errors.Is(err, vxlan.ErrInvalid) {
		t.Fatalf("VNI out of range: %v", err)
	}
}

// GPE's couplings in Validate are the kernel's own: each combination
// Validate refuses, the kernel refuses too when sent anyway, and the one it
// accepts the kernel takes.
func TestIntegrationGPECombinations(t *testing.T) {
	_, c := host(t)
	base := vxlan.Config{Name: "vx-gpe", GPE: true, CollectMetadata: true, Learning: vxlan.Ptr(false)}
	for _, ok := range []vxlan.Config{base, {Name: "vx-gpe", GPE: true, CollectMetadata: true, Learning: vxlan.Ptr(false),
		LocalBypass: vxlan.Ptr(true), MulticastRoute: true, UDPChecksum: vxlan.Ptr(false)}} {
		if err := c.Create(ctx, ok); err != nil {
			t.Fatalf("an accepted combination: %v", err)
		}
		if err := c.Delete(ctx, ok.Name); err != nil {
			t.Fatal(err)
		}
	}
	yes := vxlan.Ptr(true)
	for _, tc := range []struct {
		field string
		data  func(d *rtlink.VXLAN)
		cfg   func(c *vxlan.Config)
	}{
		{"CollectMetadata", func(d *rtlink.VXLAN) { d.CollectMetadata = nil }, func(c *vxlan.Config) { c.CollectMetadata = false }},
		{"Learning", func(d *rtlink.VXLAN) { d.Learning = yes }, func(c *vxlan.Config) { c.Learning = vxlan.Ptr(true) }},
		{"Learning", func(d *rtlink.VXLAN) { d.Learning = nil }, func(c *vxlan.Config) { c.Learning = nil }},
		{"Proxy", func(d *rtlink.VXLAN) { d.Proxy = yes }, func(c *vxlan.Config) { c.Proxy = true }},
		{"RSC", func(d *rtlink.VXLAN) { d.RSC = yes }, func(c *vxlan.Config) { c.RSC = true }},
		{"L2Miss", func(d *rtlink.VXLAN) { d.L2Miss = yes }, func(c *vxlan.Config) { c.L2Miss = true }},
		{"L3Miss", func(d *rtlink.VXLAN) { d.L3Miss = yes }, func(c *vxlan.Config) { c.L3Miss = true }},
		{"GBP", func(d *rtlink.VXLAN) { d.GBP = true }, func(c *vxlan.Config) { c.GBP = true }},
		{"TTLInherit", func(d *rtlink.VXLAN) { d.TTLInherit = true }, func(c *vxlan.Config) { c.TTLInherit = true }},
		{"RemoteChecksumTX", func(d *rtlink.VXLAN) { d.RemCSumTX = yes }, func(c *vxlan.Config) { c.RemoteChecksumTX = true }},
		{"RemoteChecksumRX", func(d *rtlink.VXLAN) { d.RemCSumRX = yes }, func(c *vxlan.Config) { c.RemoteChecksumRX = true }},
		{"RemoteChecksumNoPartial", func(d *rtlink.VXLAN) { d.RemCSumNoPartial = true }, func(c *vxlan.Config) { c.RemoteChecksumNoPartial = true }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			cfg := base
			tc.cfg(&cfg)
			var ce *vxlan.ConfigError
			if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, vxlan.ErrInvalid) {
				t.Errorf("Validate with GPE and %s: %v", tc.field, err)
			}
			// Without GPE, the kernel must offer the setting, or it refuses
			// it for that reason rather than for GPE's rules.
			alone := vxlan.Config{VNI: 1}
			tc.cfg(&alone)
			alone.CollectMetadata = false
			if alone.RemoteChecksumNoPartial {
				alone.RemoteChecksumRX = true
			}
			requireOffered(t, c, alone)
			d := &rtlink.VXLAN{ID: vxlan.Ptr(uint32(0)), GPE: true, CollectMetadata: yes, Learning: vxlan.Ptr(false)}
			tc.data(d)
			_, err := c.Conn().CreateLink(ctx, &rtlink.Link{Name: "vx-raw", Data: d})
			if !errors.Is(err, vxlan.ErrInvalid) || !errors.Is(err, unix.EINVAL) {
				t.Errorf("the kernel took GPE with %s: %v", tc.field, err)
				_ = c.Delete(ctx, "vx-raw")
			}
		})
	}
}
