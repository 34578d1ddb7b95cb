package rtlink_test

import (
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// A vxlan made from namespace a directly into namespace b (Link.NetNS)
// keeps its underlay in a: read from b, it has LinkNetNSID set and the
// underlay's index in a; ChangeLink from b changes it in place.
func TestIntegrationLinkInOtherNamespace(t *testing.T) {
	a, b := testns.New(t), testns.New(t)
	ca, cb := a.Dial(), b.Dial()
	ul := mustLink(t, ca, &rtlink.Link{Name: "ul0", Data: &rtlink.Veth{PeerName: "ul1"}})
	made, err := ca.CreateLink(ctx, &rtlink.Link{Name: "vx0", NetNS: b.Open(),
		Data: &rtlink.VXLAN{ID: rtlink.Ptr(uint32(7)), Link: rtlink.Ptr(uint32(ul.Index)), Port: rtlink.Ptr(uint16(4789))}})
	if err != nil || made != nil {
		t.Fatalf("create into b: %v %v", made, err)
	}
	if _, err := ca.LinkByName(ctx, "vx0"); err == nil {
		t.Fatal("vx0 is in a")
	}
	got, err := cb.LinkByName(ctx, "vx0")
	if err != nil {
		t.Fatal(err)
	}
	d := got.Data.(*rtlink.VXLAN)
	if got.LinkNetNSID == nil || d.Link == nil || int(*d.Link) != ul.Index {
		t.Fatalf("read from b: LinkNetNSID %v, underlay %v, want index %d", got.LinkNetNSID, d.Link, ul.Index)
	}
	if err := cb.ChangeLink(ctx, got.Index, &rtlink.VXLAN{TTL: rtlink.Ptr(uint8(9))}); err != nil {
		t.Fatal(err)
	}
	if ip := b.LinkJSON("vx0"); ip.Linkinfo.InfoData["ttl"] != float64(9) || ip.Ifindex != got.Index {
		t.Fatalf("after ChangeLink: %+v", ip.Linkinfo.InfoData)
	}
}

// IFLA_VXLAN_AGEING 0 is no "never expire": the kernel stores its default,
// 300 seconds, as VXLAN.Ageing documents.
func TestIntegrationAgeingZeroIsDefault(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	got := mustLink(t, c, &rtlink.Link{Name: "vx0", Data: &rtlink.VXLAN{ID: rtlink.Ptr(uint32(1)), Ageing: rtlink.Ptr(uint32(0))}})
	if a := got.Data.(*rtlink.VXLAN).Ageing; a == nil || *a != 300 {
		t.Fatalf("Ageing 0 reads back as %v", a)
	}
	if ip := ns.LinkJSON("vx0"); ip.Linkinfo.InfoData["ageing"] != float64(300) {
		t.Fatalf("ip reports ageing %v", ip.Linkinfo.InfoData["ageing"])
	}
}
