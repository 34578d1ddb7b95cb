package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/reapgroup"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// liveDriver is a driver on a LinuxHost inside a fresh namespace with an
// underlay device "ul0" (MTU 1500).
func liveDriver(t *testing.T, scope string) (*Driver, *testns.NS) {
	t.Helper()
	ns := testns.New(t)
	ns.IP("link", "add", "ul0", "type", "veth", "peer", "name", "ul1")
	ns.IP("addr", "add", "198.18.4.1/24", "dev", "ul0")
	ns.IP("link", "set", "ul0", "up")
	d, err := NewDriver(Config{Scope: scope, VTEPDevice: "ul0", Host: linuxhost.New(ns.Dial())})
	if err != nil {
		t.Fatal(err)
	}
	return d, ns
}

func createNet(ctx context.Context, d *Driver, id string, opts map[string]any) error {
	_, err := d.CreateNetwork(ctx, &CreateNetworkRequest{
		NetworkID: id,
		Options:   map[string]any{optGeneric: opts, optEnableIPv6: true},
		IPv4Data:  []IPAMData{{Pool: "198.19.4.0/24", Gateway: "198.19.4.1/24"}},
		IPv6Data:  []IPAMData{{Pool: "fd00:4::/64", Gateway: "fd00:4::1/64"}},
	})
	return err
}

func TestIntegrationLinuxHostBridgeMode(t *testing.T) {
	ctx := t.Context()
	d, ns := liveDriver(t, fabric.ScopeLocal)
	id := "0123456789abcdef"
	if err := createNet(ctx, d, id, map[string]any{"VxlanId": "0x64", "Peers": "198.18.4.2,198.18.4.3", "TTL": "9", "Learning": "false", "bridgeTXQLen": "333"}); err != nil {
		t.Fatal(err)
	}
	vx, br := ns.LinkJSON("vx_0123456789ab"), ns.LinkJSON("br_0123456789ab")
	if vx.Master != "br_0123456789ab" || vx.MTU != 1450 || vx.Ifalias != fabric.OwnerMark(id) || br.Ifalias != fabric.OwnerMark(id) || br.Txqlen != 333 {
		t.Fatalf("links: vxlan %+v bridge %+v", vx, br)
	}
	if vx.Linkinfo.InfoData["id"] != float64(100) || vx.Linkinfo.InfoData["ttl"] != float64(9) || vx.Linkinfo.InfoData["learning"] != false ||
		vx.Linkinfo.InfoData["link"] != "ul0" || vx.Linkinfo.InfoData["port"] != float64(4789) {
		t.Fatalf("vxlan info: %v", vx.Linkinfo.InfoData)
	}
	addrs := ns.IP("-j", "addr", "show", "dev", "br_0123456789ab")
	if !strings.Contains(addrs, `"198.19.4.1"`) || !strings.Contains(addrs, `"fd00:4::1"`) {
		t.Fatalf("gateways not on the bridge: %s", addrs)
	}
	fdb, _ := ns.Exec("bridge", "fdb", "show", "dev", "vx_0123456789ab")
	if !strings.Contains(fdb, "dst 198.18.4.2") || !strings.Contains(fdb, "dst 198.18.4.3") {
		t.Fatalf("peers: %s", fdb)
	}
	// Repeating the creation is a no-op.
	d2, _ := NewDriver(Config{Scope: fabric.ScopeLocal, VTEPDevice: "ul0", Host: d.cfg.Host})
	if err := createNet(ctx, d2, id, map[string]any{"VxlanId": "0x64", "Peers": "198.18.4.2,198.18.4.3", "TTL": "9", "Learning": "false", "bridgeTXQLen": "333"}); err != nil {
		t.Fatalf("re-creating over our own links: %v", err)
	}

	// An endpoint: veth with the container MTU and MAC, host end in the bridge.
	iface, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: "e0123456789abcdef", Interface: &EndpointInterface{Address: "198.19.4.7/24"}})
	if err != nil || iface == nil || iface.MacAddress != "02:42:c6:13:04:07" {
		t.Fatalf("%+v %v", iface, err)
	}
	// The bridge has a MAC of its own: a new port does not change it.
	if after := ns.LinkJSON("br_0123456789ab").Address; after != br.Address || after == ns.LinkJSON("vx_0123456789ab").Address {
		t.Fatalf("bridge MAC %s, then %s with a new port", br.Address, after)
	}
	hostEnd, ctrEnd := ns.LinkJSON("vhe0123456789a"), ns.LinkJSON("vce0123456789a")
	if hostEnd.Master != "br_0123456789ab" || hostEnd.MTU != 1450 || ctrEnd.MTU != 1450 || ctrEnd.Address != "02:42:c6:13:04:07" {
		t.Fatalf("veth: %+v / %+v", hostEnd, ctrEnd)
	}
	if err := d.DeleteEndpoint(ctx, id, "e0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteNetwork(ctx, id); err != nil {
		t.Fatal(err)
	}
	drain(t, d)
	if out := ns.IP("-br", "link"); strings.Contains(out, "vx_") || strings.Contains(out, "br_") || strings.Contains(out, "vhe") {
		t.Fatalf("left after delete:\n%s", out)
	}
}

// Links the plugin did not make are never taken over or deleted; a
// bridge named by bridgeName is used and left in place, without the
// gateway addresses the network put on it.
func TestIntegrationLinuxHostOwnership(t *testing.T) {
	ctx := t.Context()
	d, ns := liveDriver(t, fabric.ScopeLocal)
	ns.IP("link", "add", "foreignvx", "type", "vxlan", "id", "999", "dstport", "4789")
	ns.IP("link", "add", "opbr", "type", "bridge")

	cases := []struct {
		opts   map[string]any
		says   string
		is     error // the cause the error matches
		kernel bool  // whether the cause is the kernel's, an *rtlink.OpError
	}{
		{map[string]any{"VxlanId": "1", "vxlanName": "ul0"}, "option vxlanName=ul0: ul0 exists and is a veth, not a vxlan; it is left alone", vxlan.ErrWrongKind, false},
		{map[string]any{"VxlanId": "1", "vxlanName": "lo"}, "lo exists and is a device without a kind", vxlan.ErrWrongKind, false},
		{map[string]any{"VxlanId": "1", "vxlanName": "foreignvx"}, "a vxlan foreignvx exists that this plugin did not create", vxlan.ErrExists, false},
		{map[string]any{"VxlanId": "1", "bridgeName": "ul1"}, "option bridgeName=ul1: ul1 exists and is a veth, not a bridge", vxlan.ErrWrongKind, false},
		{map[string]any{"VxlanId": "999"}, "option VxlanId=999: VNI 999 on UDP port 4789 is already used by vxlan foreignvx (not created by this plugin)", vxlan.ErrExists, true},
	}
	for _, tc := range cases {
		err := createNet(ctx, d, "feedfacefeedface", tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v: %v\nwant %q", tc.opts, err, tc.says)
		}
		// The cause survives the plugin's wording.
		var oe *fabric.OptionError
		var ke *rtlink.OpError
		if !errors.Is(err, tc.is) || !errors.As(err, &oe) || errors.As(err, &ke) != tc.kernel {
			t.Errorf("%v: %v: matches %v: %v, *fabric.OptionError: %v, *rtlink.OpError: %v (want %v)", tc.opts, err, tc.is, errors.Is(err, tc.is), oe != nil, ke != nil, tc.kernel)
		}
		// Nothing from the attempt remains, and the foreign links are intact.
		out := ns.IP("-br", "link")
		if strings.Contains(out, "vx_feedface") || strings.Contains(out, "br_feedface") {
			t.Fatalf("%v left links behind:\n%s", tc.opts, out)
		}
		for _, name := range []string{"ul0", "ul1", "lo", "foreignvx", "opbr"} {
			if _, err := ns.TryIP("link", "show", name); err != nil {
				t.Fatalf("%s was removed", name)
			}
		}
		if m := ns.LinkJSON("ul0").Master; m != "" {
			t.Fatalf("ul0 was enslaved to %s", m)
		}
	}

	// The operator's bridge is used, and left in place on delete.
	if err := createNet(ctx, d, "feedfacefeedface", map[string]any{"VxlanId": "2", "bridgeName": "opbr"}); err != nil {
		t.Fatal(err)
	}
	if ns.LinkJSON("vx_feedfacefeed").Master != "opbr" {
		t.Fatal("vxlan not in the operator's bridge")
	}
	if err := d.DeleteNetwork(ctx, "feedfacefeedface"); err != nil {
		t.Fatal(err)
	}
	drain(t, d)
	if _, err := ns.TryIP("link", "show", "opbr"); err != nil {
		t.Fatal("the operator's bridge was deleted")
	}
	if addrs := ns.IP("-j", "addr", "show", "dev", "opbr"); strings.Contains(addrs, "198.19.4.1") {
		t.Fatalf("gateway left on the operator's bridge: %s", addrs)
	}
}

// In global scope the gateway stays off the host unless HostGateway says
// otherwise; in local scope HostGateway=false keeps it off.
func TestIntegrationLinuxHostGatewayRule(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		scope string
		opt   string
		want  bool
	}{{fabric.ScopeLocal, "", true}, {fabric.ScopeLocal, "false", false}, {fabric.ScopeGlobal, "", false}, {fabric.ScopeGlobal, "true", true}} {
		d, ns := liveDriver(t, tc.scope)
		opts := map[string]any{"VxlanId": "3"}
		if tc.opt != "" {
			opts["HostGateway"] = tc.opt
		}
		if err := createNet(ctx, d, "abcabcabcabc", opts); err != nil {
			t.Fatal(err)
		}
		has := strings.Contains(ns.IP("-j", "addr", "show", "dev", "br_abcabcabcabc"), "198.19.4.1")
		if has != tc.want {
			t.Errorf("scope %s HostGateway=%q: gateway on host %v, want %v", tc.scope, tc.opt, has, tc.want)
		}
	}
}

// macvlan mode: a vxlan link and no bridge; each container gets a macvlan
// link on the vxlan link.
func TestIntegrationLinuxHostMacvlanMode(t *testing.T) {
	ctx := t.Context()
	d, ns := liveDriver(t, fabric.ScopeLocal)
	id := "abcdef0123456789"
	if err := createNet(ctx, d, id, map[string]any{"VxlanId": "20", "mode": "macvlan", "Peers": "198.18.4.2"}); err != nil {
		t.Fatal(err)
	}
	vx := ns.LinkJSON("vx_abcdef012345")
	if vx.Master != "" || vx.Ifalias != fabric.OwnerMark(id) {
		t.Fatalf("vxlan: %+v", vx)
	}
	if out := ns.IP("-br", "link"); strings.Contains(out, "br_") {
		t.Fatalf("a bridge was made:\n%s", out)
	}
	if addrs := ns.IP("-j", "addr", "show", "dev", "vx_abcdef012345"); strings.Contains(addrs, "198.19.4.1") {
		t.Fatalf("gateway put on the host: %s", addrs)
	}
	if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: "e1e1e1e1e1e1e1e1", Interface: &EndpointInterface{Address: "198.19.4.9/24"}}); err != nil {
		t.Fatal(err)
	}
	mv := ns.LinkJSON("vce1e1e1e1e1e1")
	if mv.Linkinfo.InfoKind != "macvlan" || mv.Linkinfo.InfoData["mode"] != "bridge" || mv.Link != "vx_abcdef012345" || mv.MTU != 1450 || mv.Address != "02:42:c6:13:04:09" {
		t.Fatalf("macvlan: %+v", mv)
	}
	resp, err := d.Join(ctx, &JoinRequest{NetworkID: id, EndpointID: "e1e1e1e1e1e1e1e1"})
	if err != nil || resp.InterfaceName.SrcName != "vce1e1e1e1e1e1" || resp.Gateway != "198.19.4.1" {
		t.Fatalf("join: %+v %v", resp, err)
	}
	if err := d.DeleteEndpoint(ctx, id, "e1e1e1e1e1e1e1e1"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteNetwork(ctx, id); err != nil {
		t.Fatal(err)
	}
	drain(t, d)
	if out := ns.IP("-br", "link"); strings.Contains(out, "vx_") || strings.Contains(out, "vce1") {
		t.Fatalf("left:\n%s", out)
	}
}

// A parent network: the first listed name that exists is the parent, the
// containers get macvlan links on it in the mode asked, and deleting the
// network leaves the operator's parent alone.
func TestIntegrationLinuxHostParentList(t *testing.T) {
	ctx := t.Context()
	d, ns := liveDriver(t, fabric.ScopeLocal)
	id := "0a0a0a0a0a0a0a0a"
	if err := createNet(ctx, d, id, map[string]any{"parent": "toothbrush, ul0, ul1", "macvlan_mode": "private"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: "e2e2e2e2e2e2e2e2", Interface: &EndpointInterface{Address: "198.18.4.20/24"}}); err != nil {
		t.Fatal(err)
	}
	mv := ns.LinkJSON("vce2e2e2e2e2e2")
	if mv.Link != "ul0" || mv.Linkinfo.InfoData["mode"] != "private" || mv.MTU != 1500 {
		t.Fatalf("macvlan: %+v", mv)
	}
	if err := d.DeleteEndpoint(ctx, id, "e2e2e2e2e2e2e2e2"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteNetwork(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.TryIP("link", "show", "ul0"); err != nil {
		t.Fatal("the parent was deleted")
	}
}

// No parent, local scope: an isolated network on a link of its own, a
// dummy where the kernel has one, else one end of an up veth pair.
func TestIntegrationLinuxHostIsolated(t *testing.T) {
	ctx := t.Context()
	d, ns := liveDriver(t, fabric.ScopeLocal)
	id := "1505a7ed1505a7ed"
	if err := createNet(ctx, d, id, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	parent := ns.LinkJSON("pa_1505a7ed1505")
	if parent.Ifalias != fabric.OwnerMark(id) || (parent.Linkinfo.InfoKind != "dummy" && parent.Linkinfo.InfoKind != "veth") {
		t.Fatalf("parent: %+v", parent)
	}
	for _, ep := range []string{"e3e3e3e3e3e3e3e3", "e4e4e4e4e4e4e4e4"} {
		if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: ep, Interface: &EndpointInterface{Address: "198.19.5.2/24"}}); err != nil {
			t.Fatal(err)
		}
		if err := d.DeleteEndpoint(ctx, id, ep); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.DeleteNetwork(ctx, id); err != nil {
		t.Fatal(err)
	}
	if out := ns.IP("-br", "link"); strings.Contains(out, "pa_") || strings.Contains(out, "pb_") {
		t.Fatalf("left:\n%s", out)
	}
}

// An 802.1Q parent (master.id) is made when missing, marked, shared by the
// networks that name it and deleted with the last of them. This kernel has
// no 8021q module: there the creation must fail saying so and leave
// nothing, and the rest is skipped with that reason.
func TestIntegrationLinuxHostVLANParent(t *testing.T) {
	ctx := t.Context()
	d, ns := liveDriver(t, fabric.ScopeLocal)
	err := createNet(ctx, d, "7777777777777777", map[string]any{"parent": "bond0.65, ul0.65"})
	if err != nil {
		if !strings.Contains(err.Error(), "option parent=ul0.65: this kernel has no 802.1Q VLAN support") {
			t.Fatalf("error does not say what is missing: %v", err)
		}
		if out := ns.IP("-br", "link"); strings.Contains(out, "ul0.65") {
			t.Fatalf("left:\n%s", out)
		}
		if len(d.networks) != 0 {
			t.Fatal("state entry left")
		}
		testns.SkipMissingFeature(t, "8021q", err)
	}
	if v := ns.LinkJSON("ul0.65"); v.Ifalias != "docker-vxlan-plugin vlan" || v.Linkinfo.InfoData["id"] != float64(65) {
		t.Fatalf("vlan: %+v", v)
	}
	if err := createNet(ctx, d, "8888888888888888", map[string]any{"parent": "ul0.65"}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteNetwork(ctx, "7777777777777777"); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.TryIP("link", "show", "ul0.65"); err != nil {
		t.Fatal("the vlan went while another network used it")
	}
	if err := d.DeleteNetwork(ctx, "8888888888888888"); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.TryIP("link", "show", "ul0.65"); err == nil {
		t.Fatal("the vlan stayed after its last network")
	}
}

// The VTEP device disappears: the kernel takes the vxlan link with it. A
// container start then says which device is missing, and once the device
// is back the network's links are made again.
func TestIntegrationLinuxHostVTEPDeviceDisappears(t *testing.T) {
	ctx := t.Context()
	d, ns := liveDriver(t, fabric.ScopeLocal)
	id := "dead0ea1dead0ea1"
	if err := createNet(ctx, d, id, map[string]any{"VxlanId": "50"}); err != nil {
		t.Fatal(err)
	}
	ns.IP("link", "del", "ul0")
	if _, err := ns.TryIP("link", "show", "vx_dead0ea1dead"); err == nil {
		t.Fatal("the kernel kept the vxlan link without its device")
	}
	_, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: "e5e5e5e5e5e5e5e5", Interface: &EndpointInterface{Address: "198.19.4.5/24"}})
	if err == nil || !strings.Contains(err.Error(), "its vxlan link vx_dead0ea1dead is gone (the kernel removes it with its VTEP device ul0)") || !strings.Contains(err.Error(), `Device "ul0"`) {
		t.Fatalf("error: %v", err)
	}
	ns.IP("link", "add", "ul0", "type", "veth", "peer", "name", "ul2")
	if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: "e5e5e5e5e5e5e5e5", Interface: &EndpointInterface{Address: "198.19.4.5/24"}}); err != nil {
		t.Fatalf("with the device back: %v", err)
	}
	if vx := ns.LinkJSON("vx_dead0ea1dead"); vx.Master != "br_dead0ea1dead" || vx.Linkinfo.InfoData["link"] != "ul0" {
		t.Fatalf("vxlan made again: %+v", vx)
	}
}

// Restore against the kernel: after a "reboot" (the network's links are
// gone) the links are made again from the state file; links the plugin
// made for a network the state does not know are reported, and deleted
// only with CleanOrphans.
func TestIntegrationLinuxHostRestore(t *testing.T) {
	ctx := t.Context()
	ns := testns.New(t)
	ns.IP("link", "add", "ul0", "type", "veth", "peer", "name", "ul1")
	ns.IP("link", "set", "ul0", "up")
	dir := t.TempDir()
	var store *stateStore
	newDriver := func(clean bool) *Driver {
		// A restarted plugin: the one before released the store.
		if store != nil {
			store.Close()
		}
		var err error
		if store, err = openStore(dir); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		d, err := NewDriver(Config{Scope: fabric.ScopeLocal, VTEPDevice: "ul0", Host: linuxhost.New(ns.Dial()), store: store, CleanOrphans: clean})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := newDriver(false)
	if err := createNet(ctx, d, "5ave5ave5ave5ave", map[string]any{"VxlanId": "61", "Peers": "198.18.4.9"}); err != nil {
		t.Fatal(err)
	}
	// An orphan: a network the plugin made but forgot (its state lost).
	orphan := newDriver(false)
	orphan.store = nil
	if err := createNet(ctx, orphan, "0afa0afa0afa0afa", map[string]any{"VxlanId": "62"}); err != nil {
		t.Fatal(err)
	}
	// "Reboot": the known network's links are gone.
	ns.IP("link", "del", "vx_5ave5ave5ave")
	ns.IP("link", "del", "br_5ave5ave5ave")

	rep, err := newDriver(false).Restore(ctx)
	if err != nil || rep.Networks != 1 || len(rep.Failed) != 0 || rep.Cleaned {
		t.Fatalf("%+v %v", rep, err)
	}
	if vx := ns.LinkJSON("vx_5ave5ave5ave"); vx.Master != "br_5ave5ave5ave" || vx.Linkinfo.InfoData["id"] != float64(61) {
		t.Fatalf("not made again: %+v", vx)
	}
	if fdb, _ := ns.Exec("bridge", "fdb", "show", "dev", "vx_5ave5ave5ave"); !strings.Contains(fdb, "dst 198.18.4.9") {
		t.Fatalf("peer not made again: %s", fdb)
	}
	var orphans []string
	for _, o := range rep.Orphans {
		orphans = append(orphans, o.Name)
	}
	if strings.Join(orphans, ",") != "vx_0afa0afa0afa,br_0afa0afa0afa" {
		t.Fatalf("orphans %v", orphans)
	}
	if _, err := ns.TryIP("link", "show", "vx_0afa0afa0afa"); err != nil {
		t.Fatal("an orphan was deleted without CleanOrphans")
	}
	rep, err = newDriver(true).Restore(ctx)
	if err != nil || !rep.Cleaned {
		t.Fatalf("%+v %v", rep, err)
	}
	if out := ns.IP("-br", "link"); strings.Contains(out, "0afa") || !strings.Contains(out, "vx_5ave") {
		t.Fatalf("after cleaning:\n%s", out)
	}
}

// A network deleted and at once made again with the same VNI and names
// works: the new CreateNetwork waits for the old links' deletion; an
// endpoint made again with the same ID likewise. Links
// released but not deleted when the plugin stops (a crash) are deleted by
// the next start.
func TestIntegrationLinuxHostReleasedLinks(t *testing.T) {
	ctx := t.Context()
	d, ns := liveDriver(t, fabric.ScopeLocal)
	opts := map[string]any{"VxlanId": "70", "vxlanName": "vxsame", "bridgeName": "brsame"}
	for i, id := range []string{"1000000000000001", "1000000000000002", "1000000000000003"} {
		if err := createNet(ctx, d, id, opts); err != nil {
			t.Fatalf("network %d: %v", i, err)
		}
		if vx := ns.LinkJSON("vxsame"); vx.Ifalias != fabric.OwnerMark(id) {
			t.Fatalf("network %d: vxsame is %q's", i, vx.Ifalias)
		}
		if err := d.DeleteNetwork(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	// The same for an endpoint: deleted and made again at once with the
	// same ID, so the same link names. Each CreateEndpoint waits for the
	// released veth's deletion.
	if _, err := d.CreateNetwork(ctx, &CreateNetworkRequest{NetworkID: "1000000000000004", Options: map[string]any{optGeneric: map[string]any{"VxlanId": "72"}},
		IPv4Data: []IPAMData{{Pool: "198.19.72.0/24", Gateway: "198.19.72.1/24"}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		req := &CreateEndpointRequest{NetworkID: "1000000000000004", EndpointID: "e720000000000001", Interface: &EndpointInterface{Address: "198.19.72.2/24"}}
		if _, err := d.CreateEndpoint(ctx, req); err != nil {
			t.Fatalf("endpoint, round %d: %v", i, err)
		}
		if l := ns.LinkJSON(fabric.HostIfName(req.EndpointID)); l.Master != fabric.BridgeLinkName(req.NetworkID) || l.Group != "default" {
			t.Fatalf("round %d: %s is %+v", i, fabric.HostIfName(req.EndpointID), l)
		}
		if err := d.DeleteEndpoint(ctx, req.NetworkID, req.EndpointID); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.DeleteNetwork(ctx, "1000000000000004"); err != nil {
		t.Fatal(err)
	}
	drain(t, d)
	if out := ns.IP("-br", "link"); strings.Contains(out, "same") || strings.Contains(out, "e72000000000") || strings.Contains(out, "_100000000000") {
		t.Fatalf("left:\n%s", out)
	}

	// A crash between the release and the deletion: the links are in the
	// plugin's group, and the next start deletes them; a foreign link in
	// that group is left alone.
	if err := createNet(ctx, d, "2000000000000001", map[string]any{"VxlanId": "71"}); err != nil {
		t.Fatal(err)
	}
	ns.IP("link", "set", "vx_200000000000", "group", fmt.Sprint(reapgroup.First))
	ns.IP("link", "set", "br_200000000000", "group", fmt.Sprint(reapgroup.First+reapgroup.Count-1))
	ns.IP("link", "add", "opveth", "group", fmt.Sprint(reapgroup.First), "type", "veth", "peer", "name", "opveth1")
	restarted, err := NewDriver(Config{Scope: fabric.ScopeLocal, VTEPDevice: "ul0", Host: linuxhost.New(ns.Dial())})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := restarted.Restore(ctx)
	if err != nil || len(rep.Orphans) != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	if out := ns.IP("-br", "link"); strings.Contains(out, "_200000000000") || !strings.Contains(out, "opveth") {
		t.Fatalf("after restart:\n%s", out)
	}
}

// The host-side links need no IPv6 of their own and get none: the vxlan
// link, the container veth's host end, and a bridge that holds no IPv6
// gateway. A bridge with an IPv6 gateway keeps IPv6.
func TestIntegrationLinuxHostNoIPv6OnHostLinks(t *testing.T) {
	ctx := t.Context()
	d, ns := liveDriver(t, fabric.ScopeLocal)
	ipv6Off := func(name string) bool {
		v, err := ns.Exec("sysctl", "-n", "net.ipv6.conf."+name+".disable_ipv6")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(v) == "1"
	}
	v4only, ep := "5100000000000001", "e510000000000001"
	if _, err := d.CreateNetwork(ctx, &CreateNetworkRequest{NetworkID: v4only, Options: map[string]any{optGeneric: map[string]any{"VxlanId": "80"}},
		IPv4Data: []IPAMData{{Pool: "198.19.80.0/24", Gateway: "198.19.80.1/24"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: v4only, EndpointID: ep, Interface: &EndpointInterface{Address: "198.19.80.2/24"}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{fabric.VXLANLinkName(v4only), fabric.BridgeLinkName(v4only), fabric.HostIfName(ep)} {
		if !ipv6Off(name) {
			t.Errorf("%s has IPv6", name)
		}
		if out := ns.IP("-6", "route", "show", "table", "all", "dev", name); strings.TrimSpace(out) != "" {
			t.Errorf("IPv6 routes of %s:\n%s", name, out)
		}
		if l := ns.LinkJSON(name); !slices.Contains(l.Flags, "UP") {
			t.Errorf("%s is not up: %v", name, l.Flags)
		}
	}
	if ipv6Off(fabric.ContainerIfName(ep)) {
		t.Error("the container end lost IPv6")
	}
	dual := "5200000000000002"
	if err := createNet(ctx, d, dual, map[string]any{"VxlanId": "81"}); err != nil {
		t.Fatal(err)
	}
	if ipv6Off(fabric.BridgeLinkName(dual)) {
		t.Error("the bridge with an IPv6 gateway lost IPv6")
	}
	if !ipv6Off(fabric.VXLANLinkName(dual)) {
		t.Error("the dual-stack network's vxlan link has IPv6")
	}
	if addrs := ns.IP("-j", "addr", "show", "dev", fabric.BridgeLinkName(dual)); !strings.Contains(addrs, `"fd00:4::1"`) {
		t.Fatalf("IPv6 gateway not on the bridge: %s", addrs)
	}
}

// The CNI front end's links are never the Docker driver's orphans, also
// with CleanOrphans.
func TestIntegrationLinuxHostCNILinksNotOrphans(t *testing.T) {
	ctx := t.Context()
	d, ns := liveDriver(t, fabric.ScopeLocal)
	id := fabric.CNINetworkID("vx70")
	spec, err := fabric.Resolve(ctx, d.cfg.Host, map[string]string{"VxlanId": "70"}, fabric.ResolveConfig{ID: id, Scope: fabric.ScopeLocal, DefaultVTEP: []string{"ul0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cfg.Host.CreateNetwork(ctx, spec); err != nil {
		t.Fatal(err)
	}
	store := newStore(t, t.TempDir())
	restarted, err := NewDriver(Config{Scope: fabric.ScopeLocal, VTEPDevice: "ul0", Host: d.cfg.Host, store: store, CleanOrphans: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := restarted.Restore(ctx)
	if err != nil || len(rep.Orphans) != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	if vx := ns.LinkJSON(spec.VXLAN.Name); vx.Ifalias != fabric.OwnerMark(id) {
		t.Fatalf("the CNI network's vxlan link: %+v", vx)
	}
}
