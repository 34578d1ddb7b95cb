package docker

import (
	"encoding/json"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// bridgeLinkJSON is one port of `bridge -j -d link show dev X`.
type bridgeLinkJSON struct {
	Learning      bool `json:"learning"`
	NeighSuppress bool `json:"neigh_suppress"`
}

// evpnPortState reads the vxlan port's flags twice: from iproute2 and
// from rtlink's decoder.
func evpnPortState(t *testing.T, ns *testns.NS, vx string) (learning, neighSuppress bool) {
	t.Helper()
	out, err := ns.Exec("bridge", "-j", "-d", "link", "show", "dev", vx)
	if err != nil {
		t.Fatal(err)
	}
	var ports []bridgeLinkJSON
	if err := json.Unmarshal([]byte(out), &ports); err != nil || len(ports) != 1 {
		t.Fatalf("bridge -j -d link show dev %s: %v: %s", vx, err, out)
	}
	p, err := ns.Dial().BridgePort(t.Context(), vx)
	if err != nil {
		t.Fatal(err)
	}
	if *p.Learning != ports[0].Learning || *p.NeighSuppress != ports[0].NeighSuppress {
		t.Fatalf("rtlink reads %s's port as learning %v neigh_suppress %v, iproute2 as %+v", vx, *p.Learning, *p.NeighSuppress, ports[0])
	}
	return ports[0].Learning, ports[0].NeighSuppress
}

// daemonEntries are what zebra installs on a host, added by hand: the
// other VTEP under the all-zero MAC (permanent, from its type-3 route), a
// remote container's MAC as NUD_REACHABLE with NTF_EXT_LEARNED (type-2),
// and an extern_learn ARP entry on the bridge.
func addDaemonEntries(t *testing.T, ns *testns.NS, vxName, brName string) {
	t.Helper()
	c := ns.Dial()
	vx, err := c.LinkByName(t.Context(), vxName)
	if err != nil {
		t.Fatal(err)
	}
	remote := netip.MustParseAddr("198.18.4.2")
	for _, n := range []*rtlink.Neigh{
		{Family: rtlink.FamilyBridge, LinkIndex: vx.Index, State: rtlink.NUDPermanent, Flags: rtlink.NTFSelf, MAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, IP: remote},
		{Family: rtlink.FamilyBridge, LinkIndex: vx.Index, State: rtlink.NUDReachable, Flags: rtlink.NTFSelf | rtlink.NTFExtLearned, MAC: daemonMAC, IP: remote},
	} {
		if err := c.AppendNeigh(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	ns.IP("neigh", "add", "198.19.4.99", "lladdr", daemonMAC.String(), "dev", brName, "extern_learn")
}

var daemonMAC = net.HardwareAddr{0x02, 0xee, 0, 0, 0, 0x99}

// checkDaemonEntries fails unless the entries of addDaemonEntries are
// there as they were added, read through vxlan's decoder, iproute2's
// bridge and ip.
func checkDaemonEntries(t *testing.T, ns *testns.NS, vxName, brName, after string) {
	t.Helper()
	entries, err := vxlan.New(ns.Dial()).FDB(t.Context(), vxName)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range entries {
		if e.Remote.String() == "198.18.4.2" {
			kinds = append(kinds, e.MAC.String()+" "+string(e.Kind()))
		}
	}
	slices.Sort(kinds)
	if want := []string{"00:00:00:00:00:00 peer", daemonMAC.String() + " extern_learn"}; !slices.Equal(kinds, want) {
		t.Fatalf("after %s: vxlan FDB entries to 198.18.4.2: %v, want %v", after, kinds, want)
	}
	out, _ := ns.Exec("bridge", "-j", "fdb", "show", "dev", vxName)
	var fdb []struct {
		MAC   string   `json:"mac"`
		Flags []string `json:"flags"`
	}
	if err := json.Unmarshal([]byte(out), &fdb); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(fdb, func(e struct {
		MAC   string   `json:"mac"`
		Flags []string `json:"flags"`
	}) bool {
		return e.MAC == daemonMAC.String() && slices.Contains(e.Flags, "extern_learn")
	}) {
		t.Fatalf("after %s: bridge fdb show dev %s: %s", after, vxName, out)
	}
	if n := ns.IP("neigh", "show", "dev", brName, "198.19.4.99"); !strings.Contains(n, daemonMAC.String()) || !strings.Contains(n, "extern_learn") {
		t.Fatalf("after %s: the extern_learn ARP entry on %s is %q", after, brName, n)
	}
}

// An EVPN network on the kernel, in each scope: the vxlan link has
// learning off and the VTEP device's address as local, its bridge port
// learning off and neigh_suppress on, the bridge a MAC of its own (else a
// container's veth with a lower MAC changes the bridge's, which empties
// its neighbour table, extern_learn entries included). The entries a routing daemon
// installs (all-zero VTEP entry, extern_learn MAC, extern_learn ARP entry)
// survive creating and deleting an endpoint and a restart that restores
// the network; the restart also puts back port flags someone changed, and
// a vxlan link made again (its VTEP device went and came back) gets them
// too. Deleting the network leaves no link.
func TestIntegrationEVPNNetwork(t *testing.T) {
	for _, scope := range []string{fabric.ScopeLocal, fabric.ScopeGlobal} {
		t.Run(scope, func(t *testing.T) {
			ctx := t.Context()
			ns := testns.New(t)
			ns.IP("link", "add", "ul0", "type", "veth", "peer", "name", "ul1")
			ns.IP("addr", "add", "198.18.4.1/24", "dev", "ul0")
			ns.IP("link", "set", "ul0", "up")
			dir := t.TempDir()
			var store *stateStore
			newDriver := func() *Driver {
				if store != nil {
					store.Close() // a restarted plugin: the one before released the store
				}
				var err error
				if store, err = openStore(dir); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { store.Close() })
				d, err := NewDriver(Config{Scope: scope, VTEPDevice: "ul0", Host: linuxhost.New(ns.Dial()), store: store})
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			d := newDriver()
			id := "e0e0e0e0e0e0e0e0"
			vxName, brName := "vx_e0e0e0e0e0e0", "br_e0e0e0e0e0e0"
			if err := createNet(ctx, d, id, map[string]any{"VxlanId": "101", "ControlPlane": "evpn"}); err != nil {
				t.Fatal(err)
			}
			vx := ns.LinkJSON(vxName)
			if info := vx.Linkinfo.InfoData; info["learning"] != false || info["local"] != "198.18.4.1" || info["link"] != "ul0" || info["id"] != float64(101) || vx.Master != brName {
				t.Fatalf("vxlan %+v", vx)
			}
			if l, ns := evpnPortState(t, ns, vxName); l || !ns {
				t.Fatalf("port learning %v neigh_suppress %v, want false true", l, ns)
			}
			if gw := ns.IP("-j", "addr", "show", "dev", brName); strings.Contains(gw, "198.19.4.1") != (scope == fabric.ScopeLocal) {
				t.Fatalf("gateway on the bridge in %s scope: %s", scope, gw)
			}
			addDaemonEntries(t, ns, vxName, brName)
			checkDaemonEntries(t, ns, vxName, brName, "adding them")

			if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: "ep0123456789abcd", Interface: &EndpointInterface{Address: "198.19.4.7/24"}}); err != nil {
				t.Fatal(err)
			}
			checkDaemonEntries(t, ns, vxName, brName, "creating an endpoint")
			if err := d.DeleteEndpoint(ctx, id, "ep0123456789abcd"); err != nil {
				t.Fatal(err)
			}
			checkDaemonEntries(t, ns, vxName, brName, "deleting the endpoint")

			// Someone turns the port's flags back; a restart restores the
			// network over its links and fixes them.
			ns.IP("link", "set", "dev", vxName, "type", "bridge_slave", "learning", "on", "neigh_suppress", "off")
			rep, err := newDriver().Restore(ctx)
			if err != nil || rep.Networks != 1 || len(rep.Failed) != 0 {
				t.Fatalf("restore: %+v %v", rep, err)
			}
			checkDaemonEntries(t, ns, vxName, brName, "a restore")
			if l, ns := evpnPortState(t, ns, vxName); l || !ns {
				t.Fatalf("after restore: port learning %v neigh_suppress %v, want false true", l, ns)
			}

			// The vxlan link goes (the kernel deletes it with its VTEP
			// device); the next endpoint makes it again, with its flags.
			d = newDriver()
			if _, err := d.Restore(ctx); err != nil {
				t.Fatal(err)
			}
			ns.IP("link", "del", vxName)
			if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: "ep1123456789abcd", Interface: &EndpointInterface{Address: "198.19.4.8/24"}}); err != nil {
				t.Fatal(err)
			}
			if vx := ns.LinkJSON(vxName); vx.Master != brName || vx.Linkinfo.InfoData["learning"] != false || vx.Linkinfo.InfoData["local"] != "198.18.4.1" {
				t.Fatalf("vxlan made again: %+v", vx)
			}
			if l, ns := evpnPortState(t, ns, vxName); l || !ns {
				t.Fatalf("vxlan made again: port learning %v neigh_suppress %v, want false true", l, ns)
			}
			if err := d.DeleteEndpoint(ctx, id, "ep1123456789abcd"); err != nil {
				t.Fatal(err)
			}
			if err := d.DeleteNetwork(ctx, id); err != nil {
				t.Fatal(err)
			}
			drain(t, d)
			if out := ns.IP("-br", "link"); strings.Contains(out, "e0e0") || strings.Contains(out, "vhep") {
				t.Fatalf("left after DeleteNetwork:\n%s", out)
			}
		})
	}
}
