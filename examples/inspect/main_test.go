package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Links made by iproute2 and by the library, with their FDB entries, come
// out of inspect as they were made, in JSON and in the table.
func TestIntegrationInspect(t *testing.T) {
	ns := testns.New(t)
	ns.IP("link", "add", "ul0", "type", "veth", "peer", "name", "ul1")
	ns.IP("link", "add", "vx-ip", "type", "vxlan", "id", "4242", "group", "239.1.1.1", "dev", "ul0", "dstport", "4790",
		"ttl", "64", "tos", "inherit", "proxy", "nolearning", "ageing", "77", "srcport", "5000", "6000", "gbp")
	ns.IP("link", "add", "vx-ip6", "type", "vxlan", "id", "6", "remote", "fd00:1::2", "local", "fd00:1::1", "flowlabel", "0x12345", "dstport", "8472")
	ns.IP("link", "set", "vx-ip6", "up")
	// A vxlan whose underlay stays in another namespace.
	far := testns.New(t)
	far.IP("link", "add", "ulf", "type", "veth", "peer", "name", "ulg")
	far.IP("link", "add", "vx-far", "netns", ns.Name, "type", "vxlan", "id", "8", "dstport", "4789", "dev", "ulf")
	farIndex := far.LinkJSON("ulf").Ifindex
	c := vxlan.New(ns.Dial())
	lib := vxlan.Config{Name: "vx-lib", VNI: 7, Device: "ul0", Local: netip.MustParseAddr("198.18.1.1"), Learning: vxlan.Ptr(false),
		Ageing: vxlan.Ptr(90 * time.Second), L2Miss: true, Alias: "made by the library", Up: true}
	if err := c.Create(t.Context(), lib); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPeer(t.Context(), "vx-lib", netip.MustParseAddr("198.18.1.2")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"02:00:00:00:00:05", "dst", "198.18.1.5", "vni", "99", "port", "4800"}, // iproute2's default: permanent
		{"02:00:00:00:00:06", "dst", "198.18.1.6", "self", "static"},
		{"02:00:00:00:00:07", "dst", "198.18.1.7", "self", "dynamic", "via", "ul0"},
		{"02:00:00:00:00:08", "dst", "198.18.1.8", "self", "extern_learn"},
	} {
		if out, err := ns.Exec("bridge", append([]string{"fdb", "add", args[0], "dev", "vx-lib"}, args[1:]...)...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}

	var out bytes.Buffer
	if err := run(t.Context(), ns.Name, true, &out); err != nil {
		t.Fatal(err)
	}
	var links []Link
	if err := json.Unmarshal(out.Bytes(), &links); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	byName := map[string]Link{}
	for _, l := range links {
		byName[l.Config.Name] = l
	}
	if len(links) != 4 {
		t.Fatalf("%d links: %s", len(links), out.String())
	}
	ip := byName["vx-ip"].Config
	if ip.VNI != 4242 || ip.Group.String() != "239.1.1.1" || ip.Device != "ul0" || ip.Port != 4790 || ip.TTL != 64 || ip.TOS != 1 ||
		!ip.Proxy || *ip.Learning || *ip.Ageing != 77*time.Second || ip.SrcPorts != (vxlan.PortRange{Low: 5000, High: 6000}) || !ip.GBP {
		t.Errorf("vx-ip: %+v", ip)
	}
	ip6 := byName["vx-ip6"].Config
	if ip6.VNI != 6 || ip6.Group.String() != "fd00:1::2" || ip6.Local.String() != "fd00:1::1" || ip6.Label != 0x12345 || ip6.Port != 8472 || !ip6.Up {
		t.Errorf("vx-ip6: %+v", ip6)
	}
	l := byName["vx-lib"]
	if l.Config.VNI != 7 || l.Config.Device != "ul0" || l.Config.Local != lib.Local || *l.Config.Learning || *l.Config.Ageing != 90*time.Second ||
		!l.Config.L2Miss || l.Config.Alias != lib.Alias || !l.Config.Up {
		t.Errorf("vx-lib: %+v", l.Config)
	}
	fdb := map[string]FDBEntry{}
	for _, e := range l.FDB {
		fdb[e.MAC+" "+e.Remote] = e
	}
	if e, ok := fdb["00:00:00:00:00:00 198.18.1.2"]; !ok || !e.Permanent {
		t.Errorf("peer missing: %+v", l.FDB)
	}
	if e, ok := fdb["02:00:00:00:00:05 198.18.1.5"]; !ok || e.VNI != 99 || e.Port != 4800 || e.Kind != "permanent" {
		t.Errorf("permanent entry from iproute2: %+v", l.FDB)
	}
	if e := fdb["02:00:00:00:00:06 198.18.1.6"]; e.Kind != "static" || e.Permanent {
		t.Errorf("static entry from iproute2: %+v", e)
	}
	if e := fdb["02:00:00:00:00:07 198.18.1.7"]; e.Kind != "learnt" || e.Via != "ul0" {
		t.Errorf("dynamic entry via ul0 from iproute2: %+v", e)
	}
	if e := fdb["02:00:00:00:00:08 198.18.1.8"]; e.Kind != "extern_learn" {
		t.Errorf("extern_learn entry from iproute2: %+v", e)
	}

	out.Reset()
	if err := run(t.Context(), ns.Path(), false, &out); err != nil {
		t.Fatal(err)
	}
	table := strings.Join(strings.Fields(out.String()), " ") // column widths aside
	for _, want := range []string{"vx-ip vni 4242 port 4790 state down", "group 239.1.1.1", "device ul0", "tos inherit", "flags proxy gbp",
		"vx-ip6 vni 6 port 8472 state up", "remote fd00:1::2", "local fd00:1::1", "flowlabel 0x12345",
		fmt.Sprintf("vx-far vni 8 port 4789 state down device index %d in namespace id", farIndex),
		"vx-lib vni 7 port 4789 state up", "learning false", "ageing 1m30s", "flags l2miss", "alias made by the library",
		"fdb peer 00:00:00:00:00:00 → 198.18.1.2", "fdb permanent 02:00:00:00:00:05 → 198.18.1.5 vni 99 port 4800",
		"fdb static 02:00:00:00:00:06 → 198.18.1.6", "fdb learnt 02:00:00:00:00:07 → 198.18.1.7 via ul0",
		"fdb extern_learn 02:00:00:00:00:08 → 198.18.1.8"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
