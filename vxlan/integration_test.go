package vxlan_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

var ctx = context.Background()

// host is a test namespace with an underlay device "ul0" carrying
// 198.18.1.1/24 and fd00:1::1/64.
func host(t *testing.T) (*testns.NS, *vxlan.Client) {
	t.Helper()
	ns := testns.New(t)
	ns.IP("link", "add", "ul0", "type", "veth", "peer", "name", "ul1")
	ns.IP("addr", "add", "198.18.1.1/24", "dev", "ul0")
	ns.IP("addr", "add", "fd00:1::1/64", "dev", "ul0", "nodad")
	ns.IP("link", "set", "ul0", "up")
	ns.IP("link", "set", "ul1", "up")
	return ns, vxlan.New(ns.Dial())
}

// fieldCases is one case per Config field (or per value with a distinct
// encoding), with what `ip -d -j link show` must report for it. Keys of ip
// map to info_data unless they start with "link.", which are link-level.
var fieldCases = []struct {
	name string
	cfg  vxlan.Config
	ip   map[string]string
}{
	{"VNI", vxlan.Config{VNI: 4242}, map[string]string{"id": "4242"}},
	{"VNIMax", vxlan.Config{VNI: vxlan.MaxVNI}, map[string]string{"id": "16777215"}},
	{"PortDefault", vxlan.Config{VNI: 1}, map[string]string{"port": "4789"}},
	{"Port", vxlan.Config{VNI: 1, Port: 8472}, map[string]string{"port": "8472"}},
	{"GroupIPv4", vxlan.Config{VNI: 1, Group: netip.MustParseAddr("239.1.1.1"), Device: "ul0"}, map[string]string{"group": "239.1.1.1", "link": "ul0"}},
	{"RemoteIPv4", vxlan.Config{VNI: 1, Group: netip.MustParseAddr("198.18.1.2")}, map[string]string{"remote": "198.18.1.2"}},
	{"LocalIPv4", vxlan.Config{VNI: 1, Local: netip.MustParseAddr("198.18.1.1")}, map[string]string{"local": "198.18.1.1"}},
	{"GroupIPv6", vxlan.Config{VNI: 1, Group: netip.MustParseAddr("ff05::100"), Device: "ul0"}, map[string]string{"group6": "ff05::100", "link": "ul0"}},
	{"RemoteLocalIPv6", vxlan.Config{VNI: 1, Group: netip.MustParseAddr("fd00:1::2"), Local: netip.MustParseAddr("fd00:1::1")}, map[string]string{"remote6": "fd00:1::2", "local6": "fd00:1::1"}},
	{"Device", vxlan.Config{VNI: 1, Device: "ul0"}, map[string]string{"link": "ul0"}},
	{"SrcPorts", vxlan.Config{VNI: 1, SrcPorts: vxlan.PortRange{Low: 5000, High: 6000}}, map[string]string{"port_range": "map[high:6000 low:5000]"}},
	{"TTL", vxlan.Config{VNI: 1, TTL: 64}, map[string]string{"ttl": "64"}},
	{"TTLInherit", vxlan.Config{VNI: 1, TTLInherit: true}, nil},
	{"TOS", vxlan.Config{VNI: 1, TOS: 0x10}, map[string]string{"tos": "0x10"}},
	{"TOSInherit", vxlan.Config{VNI: 1, TOS: 1}, map[string]string{"tos": "0x1"}},
	{"DFSet", vxlan.Config{VNI: 1, DF: vxlan.DFSet}, map[string]string{"df": "set"}},
	{"DFInherit", vxlan.Config{VNI: 1, DF: vxlan.DFInherit}, map[string]string{"df": "inherit"}},
	{"Label", vxlan.Config{VNI: 1, Group: netip.MustParseAddr("fd00:1::2"), Label: 0x12345}, map[string]string{"label": "0x12345"}},
	{"LabelInherit", vxlan.Config{VNI: 1, Group: netip.MustParseAddr("fd00:1::2"), LabelInherit: true}, nil},
	{"LearningOff", vxlan.Config{VNI: 1, Learning: vxlan.Ptr(false)}, map[string]string{"learning": "false"}},
	{"LearningOn", vxlan.Config{VNI: 1, Learning: vxlan.Ptr(true)}, map[string]string{"learning": "true"}},
	{"AgeingMax", vxlan.Config{VNI: 1, Ageing: vxlan.Ptr(vxlan.MaxAgeing)}, map[string]string{"ageing": "4294967"}},
	{"Ageing", vxlan.Config{VNI: 1, Ageing: vxlan.Ptr(120 * time.Second)}, map[string]string{"ageing": "120"}},
	{"Limit", vxlan.Config{VNI: 1, Limit: 100}, map[string]string{"limit": "100"}},
	{"Proxy", vxlan.Config{VNI: 1, Proxy: true}, map[string]string{"proxy": "true"}},
	{"RSC", vxlan.Config{VNI: 1, RSC: true}, map[string]string{"rsc": "true"}},
	{"L2Miss", vxlan.Config{VNI: 1, L2Miss: true}, map[string]string{"l2miss": "true"}},
	{"L3Miss", vxlan.Config{VNI: 1, L3Miss: true}, map[string]string{"l3miss": "true"}},
	{"CollectMetadata", vxlan.Config{CollectMetadata: true}, map[string]string{"external": "true"}},
	{"VNIFilter", vxlan.Config{CollectMetadata: true, VNIFilter: true}, map[string]string{"external": "true", "vnifilter": "true"}},
	{"UDPChecksumOff", vxlan.Config{VNI: 1, UDPChecksum: vxlan.Ptr(false)}, map[string]string{"udp_csum": "false"}},
	{"UDPChecksumOn", vxlan.Config{VNI: 1, UDPChecksum: vxlan.Ptr(true)}, map[string]string{"udp_csum": "true"}},
	{"UDPZeroChecksum6", vxlan.Config{VNI: 1, Group: netip.MustParseAddr("fd00:1::2"), UDPZeroChecksum6TX: true, UDPZeroChecksum6RX: true}, map[string]string{"udp_zero_csum6_tx": "true", "udp_zero_csum6_rx": "true"}},
	{"RemoteChecksum", vxlan.Config{VNI: 1, RemoteChecksumTX: true, RemoteChecksumRX: true}, map[string]string{"remcsum_tx": "true", "remcsum_rx": "true"}},
	{"RemoteChecksumNoPartial", vxlan.Config{VNI: 1, RemoteChecksumRX: true, RemoteChecksumNoPartial: true}, map[string]string{"remcsum_rx": "true"}},
	{"GBP", vxlan.Config{VNI: 1, GBP: true}, map[string]string{"gbp": "true"}},
	{"GPE", vxlan.Config{CollectMetadata: true, GPE: true, Learning: vxlan.Ptr(false), LocalBypass: vxlan.Ptr(false)}, map[string]string{"gpe": "true", "external": "true"}},
	{"LocalBypassOff", vxlan.Config{VNI: 1, LocalBypass: vxlan.Ptr(false)}, nil},
	{"MulticastRoute", vxlan.Config{VNI: 1, Group: netip.MustParseAddr("239.1.1.1"), Device: "ul0", MulticastRoute: true}, nil},
	{"ReservedBits", vxlan.Config{VNI: 1, ReservedBits: &vxlan.HeaderBits{Flags: 0x77ffffff, VNI: 0xff}}, nil},
	{"MTU", vxlan.Config{VNI: 1, MTU: 1400}, map[string]string{"link.mtu": "1400"}},
	{"HardwareAddr", vxlan.Config{VNI: 1, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0xab, 1}}, map[string]string{"link.address": "02:00:00:00:ab:01"}},
	{"TxQueueLen", vxlan.Config{VNI: 1, TxQueueLen: 500}, map[string]string{"link.txqlen": "500"}},
	{"Alias", vxlan.Config{VNI: 1, Alias: "owned by docker-vxlan-plugin"}, map[string]string{"link.ifalias": "owned by docker-vxlan-plugin"}},
	{"Up", vxlan.Config{VNI: 1, Up: true}, map[string]string{"link.up": "true"}},
}

func TestIntegrationEveryField(t *testing.T) {
	ns, c := host(t)
	for _, tc := range fieldCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Name = "vx-" + strings.ToLower(tc.name)
			if len(cfg.Name) > 15 {
				cfg.Name = cfg.Name[:15]
			}
			defer func() {
				if err := c.Delete(ctx, cfg.Name); err != nil {
					t.Errorf("delete: %v", err)
				}
			}()
			if err := c.Create(ctx, cfg); err != nil {
				var fe *vxlan.FeatureError
				if errors.As(err, &fe) {
					testns.SkipMissingFeature(t, fe.Fields[0], err)
				}
				t.Fatalf("create: %v", err)
			}
			got, err := c.Get(ctx, cfg.Name)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			// Every field asked for is what the kernel holds: Ensure's own
			// comparison against the decoded link finds nothing different.
			if _, err := c.Ensure(ctx, cfg); err != nil {
				t.Fatalf("read back differs: %v\ngot %+v", err, got)
			}
			checkIP(t, ns.LinkJSON(cfg.Name), tc.ip)
		})
	}
}

func checkIP(t *testing.T, l testns.IPLink, want map[string]string) {
	t.Helper()
	if l.Linkinfo.InfoKind != "vxlan" {
		t.Fatalf("ip reports kind %q", l.Linkinfo.InfoKind)
	}
	for k, w := range want {
		var got string
		switch k {
		case "link.mtu":
			got = fmt.Sprint(l.MTU)
		case "link.address":
			got = l.Address
		case "link.txqlen":
			got = fmt.Sprint(l.Txqlen)
		case "link.ifalias":
			got = l.Ifalias
		case "link.up":
			got = fmt.Sprint(strings.Contains(strings.Join(l.Flags, ","), "UP"))
		default:
			v, ok := l.Linkinfo.InfoData[k]
			if !ok {
				t.Errorf("ip does not report %s; info_data = %v", k, l.Linkinfo.InfoData)
				continue
			}
			got = fmt.Sprint(v)
			if f, ok := v.(float64); ok {
				got = fmt.Sprint(int64(f))
			}
		}
		if got != w {
			t.Errorf("ip reports %s = %s, want %s", k, got, w)
		}
	}
}

// Values whose decoding is easy to get wrong, checked field by field.
func TestIntegrationGetDecodesExactValues(t *testing.T) {
	_, c := host(t)
	cfg := vxlan.Config{
		Name: "vx-exact", VNI: 0xabcdef, Group: netip.MustParseAddr("fd00:1::2"), Local: netip.MustParseAddr("fd00:1::1"),
		Label: 0xfedcb, Ageing: vxlan.Ptr(time.Second), Port: 0x1234, SrcPorts: vxlan.PortRange{Low: 0x1001, High: 0x2002},
		DF: vxlan.DFInherit, TTL: 3, Limit: 7, Learning: vxlan.Ptr(false), GBP: true, TTLInherit: false,
	}
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.VNI != cfg.VNI || got.Label != cfg.Label || got.Port != cfg.Port || got.SrcPorts != cfg.SrcPorts ||
		got.Ageing == nil || *got.Ageing != time.Second || got.DF != vxlan.DFInherit || got.TTL != 3 || got.Limit != 7 ||
		got.Learning == nil || *got.Learning || !got.GBP || got.Group != cfg.Group || got.Local != cfg.Local {
		t.Fatalf("decoded %+v", got)
	}
	// Kernel defaults come back as set values.
	if got.UDPChecksum == nil || got.LocalBypass == nil {
		t.Fatalf("kernel defaults not decoded: UDPChecksum %v LocalBypass %v", got.UDPChecksum, got.LocalBypass)
	}
}

func TestIntegrationEnsure(t *testing.T) {
	ns, c := host(t)
	cfg := vxlan.Config{Name: "vx0", VNI: 42, Device: "ul0", Local: netip.MustParseAddr("198.18.1.1"), Learning: vxlan.Ptr(false), Up: true}
	created, err := c.Ensure(ctx, cfg)
	if err != nil || !created {
		t.Fatalf("first Ensure: created=%v err=%v", created, err)
	}
	before := ns.LinkJSON("vx0")
	created, err = c.Ensure(ctx, cfg)
	if err != nil || created {
		t.Fatalf("second Ensure: created=%v err=%v", created, err)
	}
	if after := ns.LinkJSON("vx0"); after.Ifindex != before.Ifindex {
		t.Fatalf("Ensure recreated the link: index %d -> %d", before.Ifindex, after.Ifindex)
	}

	// Other settings: every differing field is listed, nothing changes.
	other := cfg
	other.VNI, other.Port, other.Learning = 43, 8472, vxlan.Ptr(true)
	_, err = c.Ensure(ctx, other)
	var mm *vxlan.MismatchError
	if !errors.As(err, &mm) || !errors.Is(err, vxlan.ErrExists) {
		t.Fatalf("Ensure with other settings: %v", err)
	}
	fields := map[string]bool{}
	for _, d := range mm.Diffs {
		fields[d.Field] = true
	}
	if len(mm.Diffs) != 3 || !fields["VNI"] || !fields["Port"] || !fields["Learning"] {
		t.Fatalf("diffs %+v", mm.Diffs)
	}
	if got, _ := c.Get(ctx, "vx0"); got.VNI != 42 {
		t.Fatalf("Ensure modified the link: VNI %d", got.VNI)
	}

	// Ensure brings a downed link back up.
	ns.IP("link", "set", "vx0", "down")
	if _, err := c.Ensure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, "vx0"); !got.Up {
		t.Fatal("Ensure did not bring the link up")
	}

	// A link of another kind is refused and left alone.
	for _, name := range []string{"ul0", "lo"} {
		_, err := c.Ensure(ctx, vxlan.Config{Name: name, VNI: 1})
		if !errors.Is(err, vxlan.ErrWrongKind) {
			t.Fatalf("Ensure over %s: %v", name, err)
		}
		if err := c.Delete(ctx, name); !errors.Is(err, vxlan.ErrWrongKind) {
			t.Fatalf("Delete of %s: %v", name, err)
		}
		if _, err := ns.TryIP("link", "show", name); err != nil {
			t.Fatalf("%s was touched: %v", name, err)
		}
	}
	if err := c.Delete(ctx, "vx0"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "vx0"); err != nil {
		t.Fatalf("Delete of a link already gone: %v", err)
	}
}

func TestIntegrationKernelErrorsAreNamed(t *testing.T) {
	_, c := host(t)
	if err := c.Create(ctx, vxlan.Config{Name: "vx-a", VNI: 9}); err != nil {
		t.Fatal(err)
	}
	// The kernel refuses a second device with the same VNI and port, and
	// says so in its extended acknowledgement.
	err := c.Create(ctx, vxlan.Config{Name: "vx-b", VNI: 9})
	if !errors.Is(err, vxlan.ErrExists) || !strings.Contains(err.Error(), "vx-b") || !strings.Contains(err.Error(), "kernel:") {
		t.Fatalf("duplicate VNI: %v", err)
	}
	err = c.Create(ctx, vxlan.Config{Name: "vx-c", VNI: 10, Device: "nosuchdev"})
	if !errors.Is(err, vxlan.ErrNotFound) || !strings.Contains(err.Error(), "nosuchdev") {
		t.Fatalf("missing device: %v", err)
	}
	if _, err := c.Get(ctx, "vx-c"); !errors.Is(err, vxlan.ErrNotFound) {
		t.Fatalf("a failed create left vx-c behind: %v", err)
	}
}

func TestIntegrationList(t *testing.T) {
	ns, c := host(t)
	ns.IP("link", "add", "br-x", "type", "bridge")
	for i, name := range []string{"vx-1", "vx-2"} {
		if err := c.Create(ctx, vxlan.Config{Name: name, VNI: uint32(i + 1), Device: "ul0"}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Device != "ul0" || list[1].VNI != 2 {
		t.Fatalf("List = %+v", list)
	}
}
