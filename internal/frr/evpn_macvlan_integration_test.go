package frr_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/frr"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// EVPN needs the vxlan link to be a bridge port. Host 1 has vx100 with a
// macvlan container link on it and no bridge (the plugin's macvlan mode),
// host 2 the bridged VTEP; their BGP session comes up, but zebra on host 1
// knows VNI 100 without handing it to bgpd (an L2 VNI is announced only
// when its vxlan link has a bridge master, and local MACs are read from
// that bridge's FDB): bgpd has no L2 VNI, so no route is sent or imported,
// host 2 lists no remote VTEP and the containers cannot reach each other.
// This is why the plugin refuses ControlPlane=evpn with mode=macvlan.
func TestIntegrationEVPNNeedsBridge(t *testing.T) {
	frr.Require(t)
	h1, h2 := newHost(t, "198.18.81.1", "198.18.102.1"), newHost(t, "198.18.81.2", "198.18.102.2")
	testns.Underlay(t, h1.ns, h2.ns, netip.PrefixFrom(h1.addr, 24), netip.PrefixFrom(h2.addr, 24))
	h2.buildVTEP(t)
	h2.addContainer(t)
	if err := vxlan.New(h1.c).Create(ctx, vxlan.Config{Name: "vx100", VNI: vni, Local: h1.addr, Port: 4789, Learning: vxlan.Ptr(false), Up: true}); err != nil {
		t.Fatal(err)
	}
	vx, err := h1.c.LinkByName(ctx, "vx100")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h1.c.CreateLink(ctx, &rtlink.Link{Name: "eth0", ParentIndex: vx.Index, NetNS: h1.ctr.Open(), Data: &rtlink.Macvlan{Mode: rtlink.MacvlanModeBridge}}); err != nil {
		t.Fatal(err)
	}
	h1.ctr.IP("addr", "add", netip.PrefixFrom(h1.ctrAddr, 24).String(), "dev", "eth0")
	h1.ctr.IP("link", "set", "eth0", "up")
	r1 := frr.Start(t, h1.ns, frr.EVPNConfig(h1.addr, bgpAS, h2.addr))
	r2 := frr.Start(t, h2.ns, frr.EVPNConfig(h2.addr, bgpAS, h1.addr))
	waitFor(t, h1.ns.Name+" BGP session", func() (bool, string) {
		sum, err := r1.EVPNSummary()
		return err == nil && sum.Peers[h2.addr.String()].State == "Established", ""
	})
	defer announce([2]*evpnHost{h1, h2})()
	// Give the control plane the time it takes with a bridge (under 2 s
	// in TestIntegrationEVPNTwoHosts), twice over.
	time.Sleep(4 * time.Second)

	vnis, err := r1.EVPNVNIs()
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := vnis[vni]; !ok || v.VxlanIf != "vx100" {
		t.Fatalf("%s: zebra does not know VNI %d on vx100: %+v", h1.ns.Name, vni, vnis)
	}
	// bgpd's count of L2 VNIs: 1 on the bridged host, 0 on the other.
	for r, want := range map[*frr.Router]int{r1: 0, r2: 1} {
		var bgpVNIs struct {
			NumL2VNIs *int `json:"numL2Vnis"`
		}
		if err := r.VtyshJSON("show bgp l2vpn evpn vni json", &bgpVNIs); err != nil {
			t.Fatal(err)
		}
		if bgpVNIs.NumL2VNIs == nil || *bgpVNIs.NumL2VNIs != want {
			t.Fatalf("%s: bgpd has %v L2 VNIs, want %d", r.NS.Name, bgpVNIs.NumL2VNIs, want)
		}
	}
	if vnis, err := r2.EVPNVNIs(); err != nil || len(vnis[vni].RemoteVTEPs) != 0 {
		t.Fatalf("%s: VNI %d remote VTEPs %v (%v), want none", h2.ns.Name, vni, vnis[vni].RemoteVTEPs, err)
	}
	if out, err := h1.ctr.Exec("ping", "-c1", "-W1", h2.ctrAddr.String()); err == nil {
		t.Fatalf("the macvlan container reached host 2 through EVPN: %s", out)
	}
}
