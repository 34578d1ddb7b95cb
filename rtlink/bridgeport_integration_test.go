package rtlink_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// portFlags names each flag of rtlink.BridgePort as iproute2 prints it:
// the key in `bridge -d -j link show` ("" where bridge does not print it)
// and in the info_slave_data of `ip -d -j link show`.
var portFlags = []struct {
	bridge, ip string
	field      func(*rtlink.BridgePort) **bool
}{
	{"hairpin", "hairpin", func(p *rtlink.BridgePort) **bool { return &p.Hairpin }},
	{"guard", "guard", func(p *rtlink.BridgePort) **bool { return &p.Guard }},
	{"root_block", "root_block", func(p *rtlink.BridgePort) **bool { return &p.RootBlock }},
	{"fastleave", "fastleave", func(p *rtlink.BridgePort) **bool { return &p.FastLeave }},
	{"learning", "learning", func(p *rtlink.BridgePort) **bool { return &p.Learning }},
	{"flood", "flood", func(p *rtlink.BridgePort) **bool { return &p.UnicastFlood }},
	{"", "proxy_arp", func(p *rtlink.BridgePort) **bool { return &p.ProxyARP }},
	{"", "proxy_arp_wifi", func(p *rtlink.BridgePort) **bool { return &p.ProxyARPWiFi }},
	{"mcast_flood", "mcast_flood", func(p *rtlink.BridgePort) **bool { return &p.MulticastFlood }},
	{"mcast_to_unicast", "mcast_to_unicast", func(p *rtlink.BridgePort) **bool { return &p.MulticastToUnicast }},
	{"bcast_flood", "bcast_flood", func(p *rtlink.BridgePort) **bool { return &p.BroadcastFlood }},
	{"neigh_suppress", "neigh_suppress", func(p *rtlink.BridgePort) **bool { return &p.NeighSuppress }},
	{"isolated", "isolated", func(p *rtlink.BridgePort) **bool { return &p.Isolated }},
}

// flagsOf returns the flags of p by their ip names; an unset flag fails.
func flagsOf(t *testing.T, what string, p *rtlink.BridgePort) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	for _, f := range portFlags {
		v := *f.field(p)
		if v == nil {
			t.Fatalf("%s: %s not reported", what, f.ip)
		}
		m[f.ip] = *v
	}
	return m
}

// iproute2Flags returns the port's flags as `bridge -d -j link show` and
// `ip -d -j link show` print them, by ip names.
func iproute2Flags(t *testing.T, ns *testns.NS, dev string) (bridge, ip map[string]any) {
	t.Helper()
	out, err := ns.Exec("bridge", "-d", "-j", "link", "show", "dev", dev)
	if err != nil {
		t.Fatal(err)
	}
	var bl []map[string]any
	if err := json.Unmarshal([]byte(out), &bl); err != nil || len(bl) != 1 {
		t.Fatalf("bridge -d -j link show dev %s: %v: %s", dev, err, out)
	}
	out = ns.IP("-d", "-j", "link", "show", "dev", dev)
	var il []struct {
		Linkinfo struct {
			SlaveKind string         `json:"info_slave_kind"`
			SlaveData map[string]any `json:"info_slave_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal([]byte(out), &il); err != nil || len(il) != 1 || il[0].Linkinfo.SlaveKind != "bridge" {
		t.Fatalf("ip -d -j link show dev %s: %v: %s", dev, err, out)
	}
	bridge = map[string]any{}
	for _, f := range portFlags {
		if f.bridge != "" {
			bridge[f.ip] = bl[0][f.bridge]
		}
	}
	return bridge, il[0].Linkinfo.SlaveData
}

// Each flag, set on and off in turn on a veth port and on a vxlan port of a
// bridge, reads back from the kernel through both of rtlink's read paths
// (the link's slave data and the AF_BRIDGE dump) and through iproute2's two
// views; every other flag stays as it was.
func TestIntegrationBridgePortFlags(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	br := mustLink(t, c, &rtlink.Link{Name: "br0", Up: true, Data: &rtlink.Bridge{}})
	mustLink(t, c, &rtlink.Link{Name: "v0", MasterIndex: br.Index, Up: true, Data: &rtlink.Veth{PeerName: "v0p"}})
	mustLink(t, c, &rtlink.Link{Name: "vx0", MasterIndex: br.Index, Up: true,
		Data: &rtlink.VXLAN{ID: ptr[uint32](100), Port: ptr[uint16](4789), Learning: ptr(false)}})

	read := func(dev string) map[string]bool {
		t.Helper()
		p, err := c.BridgePort(ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		got := flagsOf(t, "BridgePort "+dev, p)
		ports, err := c.BridgePorts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, pl := range ports {
			if pl.Name == dev {
				found = true
				if pl.MasterIndex != br.Index {
					t.Fatalf("BridgePorts: %s has master %d, want %d", dev, pl.MasterIndex, br.Index)
				}
				dump := flagsOf(t, "BridgePorts "+dev, &pl.Port)
				for k, v := range got {
					if dump[k] != v {
						t.Fatalf("%s: %s is %v in the link's slave data, %v in the AF_BRIDGE dump", dev, k, v, dump[k])
					}
				}
			}
		}
		if !found || len(ports) != 2 {
			t.Fatalf("BridgePorts listed %d ports, want v0 and vx0 with %s among them", len(ports), dev)
		}
		bflags, iflags := iproute2Flags(t, ns, dev)
		for k, v := range got {
			if b, ok := bflags[k]; ok && b != v {
				t.Fatalf("%s: %s is %v by rtlink, %v by bridge -d -j link show", dev, k, v, b)
			}
			if iflags[k] != v {
				t.Fatalf("%s: %s is %v by rtlink, %v by ip -d -j link show", dev, k, v, iflags[k])
			}
		}
		return got
	}

	for _, dev := range []string{"v0", "vx0"} {
		for _, f := range portFlags {
			for _, on := range []bool{true, false} {
				before := read(dev)
				var p rtlink.BridgePort
				*f.field(&p) = &on
				if err := c.SetBridgePort(ctx, dev, &p); err != nil {
					t.Fatalf("set %s %s %v: %v", dev, f.ip, on, err)
				}
				after := read(dev)
				for k, v := range after {
					want := before[k]
					if k == f.ip {
						want = on
					}
					if v != want {
						t.Fatalf("after setting %s %s=%v: %s is %v, want %v", dev, f.ip, on, k, v, want)
					}
				}
			}
		}
	}

	// The EVPN form, two flags in one request.
	if err := c.SetBridgePort(ctx, "vx0", &rtlink.BridgePort{Learning: ptr(false), NeighSuppress: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if got := read("vx0"); got["learning"] || !got["neigh_suppress"] {
		t.Fatalf("vx0 after learning off + neigh_suppress on: %v", got)
	}

	// A link that is not a bridge port, and the bridge itself, are refused
	// by name with nothing changed; a missing link is ErrNotFound.
	for _, dev := range []string{"v0p", "br0"} {
		if err := c.SetBridgePort(ctx, dev, &rtlink.BridgePort{Learning: ptr(false)}); !errors.Is(err, rtlink.ErrNotBridgePort) {
			t.Fatalf("set on %s: %v, want ErrNotBridgePort", dev, err)
		}
		if _, err := c.BridgePort(ctx, dev); !errors.Is(err, rtlink.ErrNotBridgePort) {
			t.Fatalf("get on %s: %v, want ErrNotBridgePort", dev, err)
		}
	}
	if err := c.SetBridgePort(ctx, "nosuch", &rtlink.BridgePort{}); !errors.Is(err, rtlink.ErrNotFound) {
		t.Fatalf("set on a missing link: %v, want ErrNotFound", err)
	}
}
