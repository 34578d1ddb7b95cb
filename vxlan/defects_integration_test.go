package vxlan_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// A VNI and port already held by another vxlan: Ensure says so, in the
// kernel's words, and names the other link; it is not "no such device".
func TestIntegrationEnsureReportsVNIConflict(t *testing.T) {
	_, c := host(t)
	if _, err := c.Ensure(ctx, vxlan.Config{Name: "vx-a", VNI: 9}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Ensure(ctx, vxlan.Config{Name: "vx-b", VNI: 9})
	if err == nil || errors.Is(err, vxlan.ErrNotFound) || !errors.Is(err, vxlan.ErrExists) {
		t.Fatalf("Ensure over a taken VNI: %v", err)
	}
	for _, want := range []string{"vx-b", "vx-a", "A VXLAN device with the specified VNI already exists"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	var conflict *vxlan.VNIConflictError
	if !errors.As(err, &conflict) || conflict.Other != "vx-a" || conflict.VNI != 9 || conflict.Port != vxlan.DefaultPort {
		t.Fatalf("not a VNIConflictError naming vx-a: %#v", err)
	}
	if _, err := c.Get(ctx, "vx-b"); !errors.Is(err, vxlan.ErrNotFound) {
		t.Fatalf("vx-b was left behind: %v", err)
	}
	// The same VNI on another port is no conflict.
	if _, err := c.Ensure(ctx, vxlan.Config{Name: "vx-c", VNI: 9, Port: 8472}); err != nil {
		t.Fatal(err)
	}
	// A taken name is told apart: Create says so without a VNIConflictError.
	err = c.Create(ctx, vxlan.Config{Name: "vx-a", VNI: 99})
	if !errors.Is(err, vxlan.ErrExists) || errors.As(err, &conflict) || !strings.Contains(err.Error(), "name is taken by a vxlan") {
		t.Fatalf("Create over a taken name: %v", err)
	}
}

// An MTU the underlay cannot carry is refused before anything is made, the
// error naming the largest allowed; the largest allowed is kept as asked, so
// a second Ensure of the same Config is a no-op.
func TestIntegrationMTUAboveUnderlay(t *testing.T) {
	ns, c := host(t) // ul0 has MTU 1500
	for _, tc := range []struct {
		cfg vxlan.Config
		max string
	}{
		{vxlan.Config{Name: "vx-m4", VNI: 1, Device: "ul0", MTU: 1500}, "1450"},
		{vxlan.Config{Name: "vx-m6", VNI: 2, Device: "ul0", Local: mustAddr("fd00:1::1"), MTU: 1440}, "1430"},
	} {
		_, err := c.Ensure(ctx, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.max) || !strings.Contains(err.Error(), "MTU") {
			t.Fatalf("%s: Ensure with MTU %d over ul0: %v", tc.cfg.Name, tc.cfg.MTU, err)
		}
		if _, err := ns.TryIP("link", "show", tc.cfg.Name); err == nil {
			t.Fatalf("%s was created", tc.cfg.Name)
		}
	}
	cfg := vxlan.Config{Name: "vx-m", VNI: 3, Device: "ul0", MTU: 1450}
	for i := range 2 {
		if _, err := c.Ensure(ctx, cfg); err != nil {
			t.Fatalf("Ensure #%d: %v", i+1, err)
		}
	}
	if got := ns.LinkJSON("vx-m").MTU; got != 1450 {
		t.Fatalf("MTU %d", got)
	}
}

// Links iproute2 makes with values at the kernel's limits: Get gives a Config
// that Validate takes and Ensure finds equal.
func TestIntegrationEnsureOfGet(t *testing.T) {
	ns, c := host(t)
	ns.IP("link", "add", "vx-age", "type", "vxlan", "id", "5", "dstport", "4789", "ageing", "4294967295")
	ns.IP("link", "add", "vx-sp", "type", "vxlan", "id", "6", "dstport", "4789", "srcport", "0", "100")
	ns.IP("link", "add", "vx-mc", "type", "vxlan", "id", "7", "dstport", "4789", "group", "239.1.1.1", "dev", "ul0", "ttl", "inherit")
	// iproute2 will not send both a TTL and TTL_INHERIT; the kernel takes them.
	if _, err := c.Conn().CreateLink(ctx, &rtlink.Link{Name: "vx-ttl", Data: &rtlink.VXLAN{ID: vxlan.Ptr(uint32(8)), Port: vxlan.Ptr(uint16(4789)), TTL: vxlan.Ptr(uint8(64)), TTLInherit: true}}); err != nil {
		t.Fatal(err)
	}
	ns.IP("link", "add", "vx-gpe", "type", "vxlan", "gpe", "external")
	ns.IP("link", "add", "vx-ext", "type", "vxlan", "external", "vnifilter", "dstport", "4789")
	ns.IP("link", "add", "vx-l6", "type", "vxlan", "id", "9", "dstport", "4789", "remote", "fd00:1::2", "flowlabel", "0x12345", "udp6zerocsumtx", "udp6zerocsumrx")
	ns.IP("link", "add", "vx-map", "type", "vxlan", "id", "10", "dstport", "4789", "remote", "::ffff:198.18.1.2", "local", "::ffff:198.18.1.1")
	for _, name := range []string{"vx-age", "vx-sp", "vx-mc", "vx-ttl", "vx-gpe", "vx-ext", "vx-l6", "vx-map"} {
		got, err := c.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%s: Validate(Get): %v", name, err)
		}
		if _, err := c.Ensure(ctx, got); err != nil {
			t.Errorf("%s: Ensure(Get): %v", name, err)
		}
		// Through JSON and back, the Config still describes the link.
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var back vxlan.Config
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Ensure(ctx, back); err != nil || back.Index != got.Index || back.Index == 0 {
			t.Errorf("%s: Ensure(JSON(Get)) = %v, index %d/%d; %s", name, err, back.Index, got.Index, b)
		}
	}
}

// FDB entries keep their kind as the kernel stores it, and their via device.
func TestIntegrationFDBEntryKinds(t *testing.T) {
	ns, c := host(t)
	if err := c.Create(ctx, vxlan.Config{Name: "vx0", VNI: 5, Local: mustAddr("198.18.1.1")}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"02:00:00:00:00:01", "static"},
		{"02:00:00:00:00:02", "permanent"},
		{"02:00:00:00:00:03", "dynamic"},
		{"02:00:00:00:00:04", "extern_learn"},
		{"02:00:00:00:00:05", "via", "ul0", "vni", "77", "port", "1234"},
	} {
		cmd := append([]string{"fdb", "add", args[0], "dev", "vx0", "dst", "198.18.1.2", "self"}, args[1:]...)
		if out, err := ns.Exec("bridge", cmd...); err != nil {
			t.Fatalf("bridge %v: %v: %s", cmd, err, out)
		}
	}
	entries, err := c.FDB(ctx, "vx0")
	if err != nil {
		t.Fatal(err)
	}
	byMAC := map[string]vxlan.FDBEntry{}
	for _, e := range entries {
		byMAC[e.MAC.String()] = e
	}
	b, _ := json.Marshal(entries)
	t.Logf("entries: %s", b)
	if e := byMAC["02:00:00:00:00:01"]; e.Permanent {
		t.Errorf("static entry: %+v", e)
	}
	if e := byMAC["02:00:00:00:00:02"]; !e.Permanent {
		t.Errorf("permanent entry: %+v", e)
	}
	if e := byMAC["02:00:00:00:00:05"]; e.VNI != 77 || e.Port != 1234 || !e.Permanent {
		t.Errorf("via entry: %+v", e)
	}
	for mac, want := range map[string]vxlan.FDBKind{
		"02:00:00:00:00:01": vxlan.FDBStatic,
		"02:00:00:00:00:02": vxlan.FDBPermanent,
		"02:00:00:00:00:03": vxlan.FDBLearnt,
		"02:00:00:00:00:04": vxlan.FDBExternLearned,
		"02:00:00:00:00:05": vxlan.FDBPermanent,
	} {
		if got := byMAC[mac].Kind(); got != want {
			t.Errorf("%s: kind %s, want %s (%+v)", mac, got, want, byMAC[mac])
		}
	}
	if e := byMAC["02:00:00:00:00:04"]; !e.ExternLearned || !e.Permanent {
		t.Errorf("extern_learn entry: %+v", e)
	}
	if e := byMAC["02:00:00:00:00:05"]; e.Via != "ul0" || e.ViaIndex != ns.LinkJSON("ul0").Ifindex {
		t.Errorf("via entry: %+v", e)
	}
	if e := byMAC["02:00:00:00:00:03"]; !e.Learnt || e.Static || e.Permanent {
		t.Errorf("dynamic entry: %+v", e)
	}
}

// A vxlan whose underlay is in another namespace is not reported with the
// device of the same index in the caller's namespace.
func TestIntegrationUnderlayInOtherNamespace(t *testing.T) {
	a, _ := host(t) // ul0 lives in a
	b := testns.New(t)
	c := vxlan.New(b.Dial())
	ulIndex := a.LinkJSON("ul0").Ifindex
	// b gets devices up to ul0's index, so that index names one of them.
	for i := 0; maxIndex(t, b) < ulIndex; i++ {
		b.IP("link", "add", fmt.Sprintf("decoy%d", i), "type", "veth", "peer", "name", fmt.Sprintf("decoyp%d", i))
	}
	a.IP("link", "add", "vx-far", "netns", b.Name, "type", "vxlan", "id", "9", "dstport", "4789", "dev", "ul0")
	far := nsidOf(t, b, a.Name)
	got, err := c.Get(ctx, "vx-far")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Get = %+v", got)
	if got.Device != "" {
		t.Fatalf("Device %q: a device of this namespace, not the underlay", got.Device)
	}
	if got.DeviceIndex != ulIndex || got.LinkNetNSID == nil || *got.LinkNetNSID != int32(far.Nsid) {
		t.Fatalf("DeviceIndex %d LinkNetNSID %v, want %d and %d", got.DeviceIndex, got.LinkNetNSID, ulIndex, far.Nsid)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("Validate(Get): %v", err)
	}
	if _, err := c.Ensure(ctx, got); err != nil {
		t.Fatalf("Ensure(Get): %v", err)
	}

	// Config makes such a link itself: the underlay named by index in the
	// namespace b knows as LinkNetNSID.
	a.IP("link", "set", "ul0", "mtu", "1400")
	mine := vxlan.Config{Name: "vx-mine", VNI: 10, DeviceIndex: ulIndex, LinkNetNSID: got.LinkNetNSID}
	if _, err := c.Ensure(ctx, mine); err != nil {
		t.Fatal(err)
	}
	var ip []struct {
		LinkNetnsid *int `json:"link_netnsid"`
		Linkinfo    struct {
			InfoData struct {
				Link string `json:"link"`
			} `json:"info_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal([]byte(b.IP("-d", "-j", "link", "show", "dev", "vx-mine")), &ip); err != nil || len(ip) != 1 {
		t.Fatal(err)
	}
	// iproute2 resolves the underlay's index in b, as this package used
	// to: it names the same device as for vx-far. The MTU, derived from
	// the underlay (1400 less 50), shows which device the kernel used.
	farIP := b.LinkJSON("vx-far")
	if ip[0].LinkNetnsid == nil || *ip[0].LinkNetnsid != far.Nsid || ip[0].Linkinfo.InfoData.Link != farIP.Linkinfo.InfoData["link"] {
		t.Fatalf("ip reports link_netnsid %v link %q", ip[0].LinkNetnsid, ip[0].Linkinfo.InfoData.Link)
	}
	if mtu := b.LinkJSON("vx-mine").MTU; mtu != 1350 {
		t.Fatalf("vx-mine has MTU %d, want 1350 from the underlay in %s", mtu, a.Name)
	}
	if _, err := c.Ensure(ctx, mine); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	// An MTU the far underlay cannot carry: the kernel lowers it, Create
	// removes the link and names the largest allowed.
	big := mine
	big.Name, big.VNI, big.MTU = "vx-big", 11, 1400
	var ce *vxlan.ConfigError
	if err := c.Create(ctx, big); !errors.As(err, &ce) || ce.Field != "MTU" || !strings.Contains(err.Error(), "1350") {
		t.Fatalf("Create with MTU 1400 over a 1400-byte underlay: %v", err)
	}
	if _, err := b.TryIP("link", "show", "vx-big"); err == nil {
		t.Fatal("vx-big was left behind")
	}
}

// farNS is what `ip -j netns list-id` reports for one namespace.
type farNS struct {
	Nsid int    `json:"nsid"`
	Name string `json:"name"`
}

// nsidOf returns the id ns gives to the namespace called name.
func nsidOf(t *testing.T, ns *testns.NS, name string) farNS {
	t.Helper()
	var ids []farNS
	if err := json.Unmarshal([]byte(ns.IP("-j", "netns", "list-id")), &ids); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if id.Name == name {
			return id
		}
	}
	t.Fatalf("%s has no id for %s: %v", ns.Name, name, ids)
	return farNS{}
}

// maxIndex returns the highest interface index in ns.
func maxIndex(t *testing.T, ns *testns.NS) int {
	t.Helper()
	var links []testns.IPLink
	if err := json.Unmarshal([]byte(ns.IP("-j", "link", "show")), &links); err != nil {
		t.Fatal(err)
	}
	m := 0
	for _, l := range links {
		m = max(m, l.Ifindex)
	}
	return m
}
