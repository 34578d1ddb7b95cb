package rtlink_test

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// vniFilterDevice creates, in a fresh namespace, a veth underlay ul0 and a
// vxlan "vf0" in VNI filtering mode on it, skipping when the kernel has no
// VNI filtering (before Linux 5.18).
func vniFilterDevice(t *testing.T) (*testns.NS, *rtlink.Conn, *rtlink.Link) {
	t.Helper()
	ns := testns.New(t)
	c := ns.Dial()
	ul := mustLink(t, c, &rtlink.Link{Name: "ul0", Up: true, Data: &rtlink.Veth{PeerName: "ul1"}})
	vf, err := c.CreateLink(ctx, &rtlink.Link{Name: "vf0", Up: true, Data: &rtlink.VXLAN{
		Link: ptr(uint32(ul.Index)), Port: ptr[uint16](4789), CollectMetadata: ptr(true), VNIFilter: ptr(true)}})
	if err != nil {
		testns.SkipMissingFeature(t, "vnifilter", err)
	}
	if d, ok := vf.Data.(*rtlink.VXLAN); !ok || d.VNIFilter == nil || !*d.VNIFilter {
		testns.SkipMissingFeature(t, "vnifilter", errors.New("the kernel does not report IFLA_VXLAN_VNIFILTER back"))
	}
	if got := ns.LinkJSON("vf0").Linkinfo.InfoData; got["vnifilter"] != true || got["external"] != true {
		t.Fatalf("ip -d -j link show vf0: info_data %v, want external and vnifilter", got)
	}
	return ns, c, vf
}

func showVNIs(t *testing.T, ns *testns.NS, dev string) []string {
	t.Helper()
	var s []string
	for _, v := range ns.VNIs(dev) {
		s = append(s, dev+" "+rtlink.VNIFilterEntry{Start: v.VNI, End: v.VNIEnd, Group: v.Addr()}.String())
	}
	return s
}

func entryStrings(dev string, entries []rtlink.VNIFilterEntry) []string {
	var s []string
	for _, e := range entries {
		s = append(s, dev+" "+e.String())
	}
	return s
}

// VNIs and ranges added with and without a group read back the same with
// rtlink's decoder and with iproute2; the kernel folds consecutive VNIs of
// one group into a range; deleting part of a range splits it.
func TestIntegrationVNIFilter(t *testing.T) {
	ns, c, vf := vniFilterDevice(t)
	add := []rtlink.VNIFilterEntry{
		{Start: 10},
		{Start: 20, End: 29},
		{Start: 30, Group: netip.MustParseAddr("239.1.1.30")},
		{Start: 40, Group: netip.MustParseAddr("ff05::28")},
		{Start: 41, Group: netip.MustParseAddr("fd00:1::2")}, // a unicast IPv6 remote
	}
	if err := c.AddVNIFilter(ctx, vf.Index, add); err != nil {
		t.Fatal(err)
	}
	want := []string{"vf0 10", "vf0 20-29", "vf0 30 group 239.1.1.30", "vf0 40 group ff05::28", "vf0 41 group fd00:1::2"}
	got, err := c.VNIFilter(ctx, vf.Index, false)
	if err != nil {
		t.Fatal(err)
	}
	if s := entryStrings("vf0", got); !reflect.DeepEqual(s, want) {
		t.Fatalf("rtlink lists %q, want %q", s, want)
	}
	if s := showVNIs(t, ns, "vf0"); !reflect.DeepEqual(s, want) {
		t.Fatalf("bridge vni show lists %q, want %q", s, want)
	}

	// The kernel made a default FDB entry for each VNI with a group.
	fdb, err := ns.Exec("bridge", "fdb", "show", "dev", "vf0")
	if err != nil || !strings.Contains(fdb, "dst 239.1.1.30 vni 30") || !strings.Contains(fdb, "dst ff05::28 vni 40") {
		t.Fatalf("bridge fdb show: %v\n%s", err, fdb)
	}

	// With statistics every VNI comes on its own.
	withStats, err := c.VNIFilter(ctx, vf.Index, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(withStats) != 1+10+1+2 || withStats[1].Start != 20 || withStats[1].End != 0 || withStats[1].Stats == nil {
		t.Fatalf("with stats: %d entries, %+v", len(withStats), withStats)
	}

	// Delete 23-25 and 40: 20-29 splits in two.
	if err := c.DeleteVNIFilter(ctx, vf.Index, []rtlink.VNIFilterEntry{{Start: 23, End: 25}, {Start: 40}}); err != nil {
		t.Fatal(err)
	}
	want = []string{"vf0 10", "vf0 20-22", "vf0 26-29", "vf0 30 group 239.1.1.30", "vf0 41 group fd00:1::2"}
	got, err = c.VNIFilter(ctx, vf.Index, false)
	if err != nil {
		t.Fatal(err)
	}
	if s := entryStrings("vf0", got); !reflect.DeepEqual(s, want) {
		t.Fatalf("after delete rtlink lists %q, want %q", s, want)
	}
	if s := showVNIs(t, ns, "vf0"); !reflect.DeepEqual(s, want) {
		t.Fatalf("after delete bridge vni show lists %q, want %q", s, want)
	}

	// Adding a VNI that is there changes its group, in place.
	if err := c.AddVNIFilter(ctx, vf.Index, []rtlink.VNIFilterEntry{{Start: 10, Group: netip.MustParseAddr("239.1.1.10")}}); err != nil {
		t.Fatal(err)
	}
	if s := showVNIs(t, ns, "vf0"); s[0] != "vf0 10 group 239.1.1.10" {
		t.Fatalf("after regroup bridge vni show lists %q", s)
	}
}

// The kernel's own refusals reach the caller with its errno and words.
func TestIntegrationVNIFilterErrors(t *testing.T) {
	ns, c, vf := vniFilterDevice(t)
	plain := mustLink(t, c, &rtlink.Link{Name: "vx0", Data: &rtlink.VXLAN{ID: ptr[uint32](5), Port: ptr[uint16](4790)}})
	nounderlay := mustLink(t, c, &rtlink.Link{Name: "vf1", Data: &rtlink.VXLAN{
		Port: ptr[uint16](4791), CollectMetadata: ptr(true), VNIFilter: ptr(true)}})
	ul, err := c.LinkByName(ctx, "ul0")
	if err != nil {
		t.Fatal(err)
	}
	one := []rtlink.VNIFilterEntry{{Start: 7}}

	check := func(name string, err error, errno unix.Errno, sentinel error, message string) {
		t.Helper()
		var op *rtlink.OpError
		if !errors.As(err, &op) || !errors.Is(err, errno) || (sentinel != nil && !errors.Is(err, sentinel)) || !strings.Contains(op.Message, message) {
			t.Errorf("%s: err = %v, want %v with kernel message %q", name, err, errno, message)
		}
	}
	check("add to a vxlan without vnifilter", c.AddVNIFilter(ctx, plain.Index, one), unix.EOPNOTSUPP, rtlink.ErrNotSupported, "")
	check("add to a veth", c.AddVNIFilter(ctx, ul.Index, one), unix.EINVAL, nil, "The device is not a vxlan device")
	check("add to a missing index", c.AddVNIFilter(ctx, 9999, one), unix.ENODEV, rtlink.ErrNotFound, "")
	check("multicast group without underlay",
		c.AddVNIFilter(ctx, nounderlay.Index, []rtlink.VNIFilterEntry{{Start: 7, Group: netip.MustParseAddr("239.1.1.7")}}),
		unix.EINVAL, nil, "Local interface required for multicast remote group")
	check("delete a VNI the device lacks", c.DeleteVNIFilter(ctx, vf.Index, one), unix.ENOENT, rtlink.ErrNotFound, "")
	_, err = c.VNIFilter(ctx, plain.Index, false)
	check("list a vxlan without vnifilter", err, unix.EINVAL, nil, "")
	_, err = c.VNIFilter(ctx, ul.Index, false)
	check("list a veth", err, unix.EINVAL, nil, "The device is not a vxlan device")
	_, err = c.VNIFilter(ctx, 9999, false)
	check("list a missing index", err, unix.ENODEV, rtlink.ErrNotFound, "")

	// A VNI another vnifilter device on the same port holds.
	other := mustLink(t, c, &rtlink.Link{Name: "vf2", Data: &rtlink.VXLAN{
		Link: ptr(uint32(ul.Index)), Port: ptr[uint16](4791), CollectMetadata: ptr(true), VNIFilter: ptr(true)}})
	if err := c.AddVNIFilter(ctx, nounderlay.Index, one); err != nil {
		t.Fatal(err)
	}
	check("VNI in use", c.AddVNIFilter(ctx, other.Index, one), unix.EEXIST, rtlink.ErrExists, "VNI in use")

	// Nothing was added anywhere by the failures.
	for _, dev := range []string{"vf0", "vf2"} {
		if s := showVNIs(t, ns, dev); len(s) != 0 {
			t.Errorf("%s has VNIs after failed requests: %q", dev, s)
		}
	}
}
