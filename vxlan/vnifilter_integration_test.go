package vxlan_test

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// vniFilterHost is host(t) with a VNI filtering device "vf0" on ul0,
// skipping when the kernel lacks VNI filtering.
func vniFilterHost(t *testing.T) (*testns.NS, *vxlan.Client) {
	t.Helper()
	ns, c := host(t)
	cfg := vxlan.Config{Name: "vf0", CollectMetadata: true, VNIFilter: true, Device: "ul0", Up: true}
	if err := c.Create(ctx, cfg); err != nil {
		testns.SkipMissingFeature(t, "vnifilter", err)
	}
	got, err := c.Get(ctx, "vf0")
	if err != nil {
		t.Fatal(err)
	}
	if !got.VNIFilter || !got.CollectMetadata {
		testns.SkipMissingFeature(t, "vnifilter", fmt.Errorf("created vf0 reads back as %+v", got))
	}
	return ns, c
}

// bridgeVNIShow returns `bridge -j vni show dev NAME` as VNIRange strings.
func bridgeVNIShow(t *testing.T, ns *testns.NS, dev string) []string {
	t.Helper()
	s := []string{}
	for _, v := range ns.VNIs(dev) {
		s = append(s, vxlan.VNIRange{First: v.VNI, Last: v.VNIEnd, Group: v.Addr()}.String())
	}
	return s
}

func rangeStrings(rs []vxlan.VNIRange) []string {
	s := []string{}
	for _, r := range rs {
		s = append(s, r.String())
	}
	return s
}

// checkVNIs compares the device's VNIs, read with VNIs and with iproute2,
// with want.
func checkVNIs(t *testing.T, ns *testns.NS, c *vxlan.Client, dev string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	got, err := c.VNIs(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.Last < r.First {
			t.Errorf("VNIs reports %+v with Last before First", r)
		}
	}
	if s := rangeStrings(got); !reflect.DeepEqual(s, want) {
		t.Errorf("VNIs(%s) = %q, want %q", dev, s, want)
	}
	if s := bridgeVNIShow(t, ns, dev); !reflect.DeepEqual(s, want) {
		t.Errorf("bridge vni show dev %s = %q, want %q", dev, s, want)
	}
}

func TestIntegrationVNIFilterAPI(t *testing.T) {
	ns, c := vniFilterHost(t)
	if err := c.AddVNI(ctx, "vf0", vxlan.VNIRange{First: 10}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddVNI(ctx, "vf0", vxlan.VNIRange{First: 20, Last: 29}, vxlan.VNIRange{First: 30, Group: netip.MustParseAddr("239.1.1.30")}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddVNI(ctx, "vf0", vxlan.VNIRange{First: 40, Last: 41, Group: netip.MustParseAddr("ff05::28")}); err != nil {
		t.Fatal(err)
	}
	checkVNIs(t, ns, c, "vf0", "10", "20-29", "30 group 239.1.1.30", "40-41 group ff05::28")

	// Each VNI with a group has its default FDB entry.
	entries, err := c.FDB(ctx, "vf0")
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]bool{}
	for _, e := range entries {
		groups[fmt.Sprintf("%s vni %d", e.Remote, e.VNI)] = true
	}
	for _, want := range []string{"239.1.1.30 vni 30", "ff05::28 vni 40", "ff05::28 vni 41"} {
		if !groups[want] {
			t.Errorf("no default FDB entry %s: %v", want, entries)
		}
	}

	// Delete a piece of a range, then the whole range, gap and all: what
	// is already gone is skipped.
	if err := c.DeleteVNI(ctx, "vf0", vxlan.VNIRange{First: 23, Last: 25}); err != nil {
		t.Fatal(err)
	}
	checkVNIs(t, ns, c, "vf0", "10", "20-22", "26-29", "30 group 239.1.1.30", "40-41 group ff05::28")
	if err := c.DeleteVNI(ctx, "vf0", vxlan.VNIRange{First: 20, Last: 29}, vxlan.VNIRange{First: 41}, vxlan.VNIRange{First: 21}); err != nil {
		t.Fatal(err)
	}
	checkVNIs(t, ns, c, "vf0", "10", "30 group 239.1.1.30", "40 group ff05::28")
	if err := c.DeleteVNI(ctx, "vf0", vxlan.VNIRange{First: 20, Last: 29}); err != nil {
		t.Fatalf("deleting VNIs already gone: %v", err)
	}
	entries, _ = c.FDB(ctx, "vf0")
	for _, e := range entries {
		if e.VNI == 41 {
			t.Errorf("default FDB entry of deleted VNI 41 is left: %v", e)
		}
	}

	// Adding a VNI that is there sets its group.
	if err := c.AddVNI(ctx, "vf0", vxlan.VNIRange{First: 10, Group: netip.MustParseAddr("198.18.1.2")}); err != nil {
		t.Fatal(err)
	}
	checkVNIs(t, ns, c, "vf0", "10 remote 198.18.1.2", "30 group 239.1.1.30", "40 group ff05::28")
}

// Bad input is refused before anything is sent, naming the argument;
// the kernel's refusals reach the caller in its words; a refusal part way
// through a request leaves the device as it was.
func TestIntegrationVNIFilterAPIErrors(t *testing.T) {
	ns, c := vniFilterHost(t)
	if err := c.AddVNI(ctx, "vf0", vxlan.VNIRange{First: 21}, vxlan.VNIRange{First: 27, Group: netip.MustParseAddr("239.1.1.27")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vnis  []vxlan.VNIRange
		field string
	}{
		{nil, "vnis"},
		{[]vxlan.VNIRange{{First: 0}}, "vnis[0].First"},
		{[]vxlan.VNIRange{{First: 5}, {First: vxlan.MaxVNI + 1}}, "vnis[1].First"},
		{[]vxlan.VNIRange{{First: 9, Last: 8}}, "vnis[0].Last"},
		{[]vxlan.VNIRange{{First: 9, Last: vxlan.MaxVNI + 1}}, "vnis[0].Last"},
		{[]vxlan.VNIRange{{First: 9, Group: netip.MustParseAddr("::ffff:198.18.1.2")}}, "vnis[0].Group"},
		{[]vxlan.VNIRange{{First: 9, Group: netip.IPv4Unspecified()}}, "vnis[0].Group"},
	} {
		var ce *vxlan.ConfigError
		if err := c.AddVNI(ctx, "vf0", tc.vnis...); !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("AddVNI(%+v) = %v, want a ConfigError for %s", tc.vnis, err, tc.field)
		}
	}
	checkVNIs(t, ns, c, "vf0", "21", "27 group 239.1.1.27")

	// A multicast group on a device without underlay is refused up front.
	if err := c.Create(ctx, vxlan.Config{Name: "vf1", CollectMetadata: true, VNIFilter: true, Port: 4800}); err != nil {
		t.Fatal(err)
	}
	var ce *vxlan.ConfigError
	if err := c.AddVNI(ctx, "vf1", vxlan.VNIRange{First: 5, Group: netip.MustParseAddr("239.1.1.5")}); !errors.As(err, &ce) || ce.Field != "vnis[0].Group" {
		t.Errorf("multicast group on vf1: %v", err)
	}
	checkVNIs(t, ns, c, "vf1")

	// A vxlan without VNI filtering: the kernel's answer, explained.
	if err := c.Create(ctx, vxlan.Config{Name: "vx0", VNI: 5, Port: 4801}); err != nil {
		t.Fatal(err)
	}
	err := c.AddVNI(ctx, "vx0", vxlan.VNIRange{First: 5})
	t.Logf("AddVNI on vx0: %v", err)
	if !errors.Is(err, vxlan.ErrNotSupported) || !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), "add VNIs to vx0: not a VNI filtering device") {
		t.Errorf("AddVNI on vx0: %v", err)
	}
	if _, err := c.VNIs(ctx, "vx0"); !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "list VNIs of vx0: not a VNI filtering device") {
		t.Errorf("VNIs of vx0: %v", err)
	}
	if err := c.DeleteVNI(ctx, "vx0", vxlan.VNIRange{First: 5}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("DeleteVNI on vx0: %v", err)
	}
	// Not a vxlan at all, or no such link.
	if err := c.AddVNI(ctx, "ul0", vxlan.VNIRange{First: 5}); !errors.Is(err, vxlan.ErrWrongKind) {
		t.Errorf("AddVNI on ul0: %v", err)
	}
	if _, err := c.VNIs(ctx, "nosuch0"); !errors.Is(err, vxlan.ErrNotFound) {
		t.Errorf("VNIs of nosuch0: %v", err)
	}

	// VNI 25 is held by another VNI filtering device on the same port: the
	// kernel refuses it in the middle of 20-29 after adding 20, 22-24 and
	// regrouping 21. AddVNI puts vf0 back as it was.
	if err := c.Create(ctx, vxlan.Config{Name: "vf2", CollectMetadata: true, VNIFilter: true, Device: "ul0"}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddVNI(ctx, "vf2", vxlan.VNIRange{First: 25}); err != nil {
		t.Fatal(err)
	}
	err = c.AddVNI(ctx, "vf0", vxlan.VNIRange{First: 20, Last: 29, Group: netip.MustParseAddr("239.1.1.20")})
	t.Logf("AddVNI of a VNI in use: %v", err)
	if !errors.Is(err, vxlan.ErrExists) || !strings.Contains(err.Error(), "VNI in use") || !strings.Contains(err.Error(), "vf0") ||
		strings.Contains(err.Error(), "undoing") {
		t.Errorf("AddVNI of a VNI in use: %v", err)
	}
	checkVNIs(t, ns, c, "vf0", "21", "27 group 239.1.1.27")
	checkVNIs(t, ns, c, "vf2", "25")
	// And the underlay is a member of the groups still in use only.
	if maddr := ns.IP("maddr", "show", "dev", "ul0"); !strings.Contains(maddr, "239.1.1.27") || strings.Contains(maddr, "239.1.1.20") {
		t.Errorf("multicast memberships of ul0 after the undo:\n%s", maddr)
	}
}

// The kernel fact documented at DeleteVNI: deleting one VNI of a shared
// multicast group leaves the group although another VNI of the device
// still uses it, and setting the device down and up joins it again.
func TestIntegrationVNIFilterSharedGroupDelete(t *testing.T) {
	ns, c := vniFilterHost(t)
	g := netip.MustParseAddr("239.1.1.40")
	joined := func() bool { return strings.Contains(ns.IP("maddr", "show", "dev", "ul0"), g.String()) }
	if err := c.AddVNI(ctx, "vf0", vxlan.VNIRange{First: 40, Last: 41, Group: g}); err != nil {
		t.Fatal(err)
	}
	if !joined() {
		t.Fatalf("ul0 did not join %s", g)
	}
	if err := c.DeleteVNI(ctx, "vf0", vxlan.VNIRange{First: 40}); err != nil {
		t.Fatal(err)
	}
	checkVNIs(t, ns, c, "vf0", "41 group 239.1.1.40")
	if joined() {
		t.Logf("this kernel keeps %s joined while VNI 41 uses it: the note at DeleteVNI no longer applies", g)
		return
	}
	ns.IP("link", "set", "vf0", "down")
	ns.IP("link", "set", "vf0", "up")
	if !joined() {
		t.Fatalf("down and up did not join %s again", g)
	}
}
