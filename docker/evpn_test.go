package docker

import (
	"encoding/json"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// The local address of an EVPN network's vxlan link: SrcAddr, else the
// VTEP device's first global IPv4 address, else its first global IPv6
// one, else an error naming SrcAddr and VtepDev. Either scope. The bridge
// gets a MAC of its own unless bridgeHardwareAddr gives one.
func TestEVPNLocalAddress(t *testing.T) {
	for _, scope := range []string{fabric.ScopeLocal, fabric.ScopeGlobal} {
		_, d, host := newTestServer(t, scope, "")
		host.addrs["jumbo"] = []netip.Addr{netip.MustParseAddr("fe80::9"), netip.MustParseAddr("fd00:9::9")}
		host.addrs["vxu1"] = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("fe80::2")}
		for _, tc := range []struct {
			opts map[string]string
			want string
		}{
			{map[string]string{"VtepDev": "eth0"}, "198.18.1.1"},
			{map[string]string{"VtepDev": "eth0", "SrcAddr": "198.18.1.77"}, "198.18.1.77"},
			{map[string]string{"SrcAddr": "198.18.1.77"}, "198.18.1.77"},
			{map[string]string{"VtepDev": "jumbo"}, "fd00:9::9"},
		} {
			tc.opts["VxlanId"], tc.opts["ControlPlane"] = "7", "evpn"
			s, err := d.specFor(t.Context(), "id", tc.opts, nil, nil, false)
			if err != nil || s.VXLAN.Local.String() != tc.want || *s.VXLAN.Learning {
				t.Fatalf("%s %v: %+v %v; want local %s", scope, tc.opts, s, err, tc.want)
			}
			if m := s.Bridge.HardwareAddr; len(m) != 6 || m[0]&0x03 != 0x02 {
				t.Errorf("%v: bridge MAC %v, want a locally administered unicast one", tc.opts, m)
			}
			if s.VXLAN.Local.Is6() && s.VXLAN.MTU != 9000-vxlan.OverheadIPv6 {
				t.Errorf("%v: MTU %d from an IPv6 underlay", tc.opts, s.VXLAN.MTU)
			}
		}
		for _, tc := range []struct {
			opts map[string]string
			says string
		}{
			{map[string]string{}, "give SrcAddr, or VtepDev (or the plugin's default VTEP device) naming a device with a global address"},
			{map[string]string{"VtepDev": "vxu1"}, "the VTEP device vxu1 has no global address; give SrcAddr, or a VtepDev with one"},
		} {
			tc.opts["VxlanId"], tc.opts["ControlPlane"] = "7", "evpn"
			_, err := d.specFor(t.Context(), "id", tc.opts, nil, nil, false)
			var oe *fabric.OptionError
			if !errors.As(err, &oe) || oe.Option != "SrcAddr" || !strings.Contains(err.Error(), "ControlPlane=evpn needs the vxlan link's local address") || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%v: %v; want an SrcAddr error saying %q", tc.opts, err, tc.says)
			}
		}
	}
	_, d, _ := newTestServer(t, fabric.ScopeLocal, "")
	s, err := d.specFor(t.Context(), "id", map[string]string{"VxlanId": "7", "ControlPlane": "evpn", "VtepDev": "eth0", "bridgeHardwareAddr": "02:00:00:00:00:42"}, nil, nil, false)
	if err != nil || s.Bridge.HardwareAddr.String() != "02:00:00:00:00:42" {
		t.Fatalf("bridgeHardwareAddr with evpn: %+v %v", s, err)
	}
	// Without the option nothing is looked up: the kernel's routing picks
	// the source address, as before. (Every bridge gets a MAC of its own.)
	if s, err := d.specFor(t.Context(), "id", map[string]string{"VxlanId": "7", "VtepDev": "eth0"}, nil, nil, false); err != nil || s.VXLAN.Local.IsValid() || len(s.Bridge.HardwareAddr) != 6 {
		t.Fatalf("flood and learn: %+v %v", s, err)
	}
}

// The control plane is kept in the network record as "control_plane".
func TestStoreKeepsControlPlane(t *testing.T) {
	st, err := openStore(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spec := &fabric.NetworkSpec{ID: "n1", Kind: fabric.KindBridge, ControlPlane: fabric.ControlPlaneEVPN, VXLAN: vxlan.Config{Name: "vx_n1", VNI: 5, Local: netip.MustParseAddr("198.18.1.1"), Learning: vxlan.Ptr(false)}, Bridge: fabric.BridgeSpec{Name: "br_n1"}}
	b, _ := json.Marshal(recordOf(spec))
	if !strings.Contains(string(b), `"control_plane":"evpn"`) {
		t.Fatalf("record %s", b)
	}
	if b, _ := json.Marshal(recordOf(&fabric.NetworkSpec{ID: "n2", Kind: fabric.KindBridge})); strings.Contains(string(b), "control_plane") {
		t.Fatalf("a flood-and-learn record names a control plane: %s", b)
	}
	if err := st.putNetwork(spec); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load()
	if err != nil || len(got.Networks) != 1 || !reflect.DeepEqual(got.Networks[0].Spec, spec) {
		t.Fatalf("%+v %v", got, err)
	}
	var r networkRecord
	_ = json.Unmarshal([]byte(`{"id":"n3","kind":"bridge","control_plane":"ospf"}`), &r)
	if _, err := r.spec(); err == nil || !strings.Contains(err.Error(), `unknown control plane "ospf"`) {
		t.Fatalf("unknown control plane in a record: %v", err)
	}
}
