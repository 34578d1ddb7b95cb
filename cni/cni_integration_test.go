package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/vtepfilter"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// cniNet is a host namespace with an underlay to a peer, and a vxlan
// network configuration for it.
type cniNet struct {
	host *cniHost
	ul   string
	name string
	vx   string // the vxlan link's name on the host
	br   string // the bridge's name on the host
}

func newCNINet(t *testing.T) *cniNet {
	t.Helper()
	requireCNI(t)
	hostNS, peerNS := testns.New(t), testns.New(t)
	ul, _ := testns.Underlay(t, hostNS, peerNS, netip.MustParsePrefix("198.18.40.1/24"), netip.MustParsePrefix("198.18.40.2/24"))
	n := &cniNet{host: newCNIHost(t, hostNS), ul: ul, name: "vx-" + hostNS.Name}
	id := networkID(n.name)
	n.vx, n.br = "vx_"+id[:12], "br_"+id[:12]
	return n
}

// keys returns the plugin keys of the network: VNI, underlay and peer, and
// extra ones.
func (n *cniNet) keys(vni int, extra map[string]any) map[string]any {
	k := map[string]any{"VxlanId": vni, "VtepDev": n.ul, "Peers": []string{"198.18.40.2"}}
	for key, v := range extra {
		k[key] = v
	}
	return k
}

// checkGone fails the test if the network's links, a host end of a veth
// or the plugin's state are left on the host (after what when says).
func (n *cniNet) checkGone(t *testing.T, when string) {
	t.Helper()
	if out := n.host.ns.IP("-o", "link", "show"); strings.Contains(out, n.vx) || strings.Contains(out, n.br) || strings.Contains(out, ": vh") {
		t.Errorf("links left %s:\n%s", when, out)
	}
	if entries, _ := os.ReadDir(n.host.stateDir); len(entries) != 0 {
		t.Errorf("state left %s: %v", when, entries)
	}
}

// add attaches the container c (its namespace's name as container ID)
// and returns the result.
func (n *cniNet) add(t *testing.T, list *libcni.NetworkConfigList, c *testns.NS) *current.Result {
	t.Helper()
	res, err := n.host.cni.AddNetworkList(t.Context(), list, runtimeConf(c.Name, c))
	if err != nil {
		t.Fatalf("ADD %s: %v", c.Name, err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func containerAddr(t *testing.T, r *current.Result) netip.Addr {
	t.Helper()
	if len(r.IPs) != 1 {
		t.Fatalf("result has %d addresses, want 1: %+v", len(r.IPs), r)
	}
	a, _ := netip.AddrFromSlice(r.IPs[0].Address.IP)
	return a.Unmap()
}

func TestIntegrationCNILifecycle(t *testing.T) {
	n := newCNINet(t)
	list := n.host.conflist(t, n.name, "vxlan", "198.19.42.0/24", n.keys(4242, nil))
	ctx := t.Context()
	c1, c2 := testns.New(t), testns.New(t)
	rt1, rt2 := runtimeConf("c1", c1), runtimeConf("c2", c2)

	var addrs []netip.Addr
	for _, c := range []struct {
		ns *testns.NS
		rt *libcni.RuntimeConf
	}{{c1, rt1}, {c2, rt2}} {
		ns, rt := c.ns, c.rt
		res, err := n.host.cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			t.Fatalf("ADD %s: %v", rt.ContainerID, err)
		}
		r, err := current.NewResultFromResult(res)
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, containerAddr(t, r))
		// The result: bridge, host end, container interface with the MTU
		// rule (underlay 1500 minus 50 for an IPv4 underlay).
		if len(r.Interfaces) != 3 || r.Interfaces[0].Name != n.br || r.Interfaces[2].Name != "eth0" || r.Interfaces[2].Mtu != 1450 || r.Interfaces[2].Sandbox != ns.Path() {
			b, _ := json.Marshal(r)
			t.Fatalf("ADD %s result: %s", rt.ContainerID, b)
		}
		if *r.IPs[0].Interface != 2 {
			t.Errorf("address on interface %d, want 2", *r.IPs[0].Interface)
		}
		// The kernel: the container's eth0 with its address and MTU.
		l := ns.LinkJSON("eth0")
		if l.MTU != 1450 || l.Linkinfo.InfoKind != "veth" || l.Address != r.Interfaces[2].Mac {
			t.Errorf("container %s eth0: %+v", rt.ContainerID, l)
		}
		if out := ns.IP("-4", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, r.IPs[0].Address.String()) {
			t.Errorf("container %s: address %s missing: %s", rt.ContainerID, r.IPs[0].Address.String(), out)
		}
		if out := ns.IP("-4", "route", "show", "default"); !strings.Contains(out, "via 198.19.42.1 dev eth0") {
			t.Errorf("container %s: default route: %q", rt.ContainerID, out)
		}
	}
	vx := n.host.ns.LinkJSON(n.vx)
	if vx.Linkinfo.InfoKind != "vxlan" || vx.Master != n.br || vx.Ifalias != "docker-vxlan-plugin net="+networkID(n.name) || fmt.Sprint(vx.Linkinfo.InfoData["id"]) != "4242" || vx.MTU != 1450 {
		t.Errorf("vxlan link: %+v", vx)
	}
	if err := c1.Ping(addrs[1], 2); err != nil {
		t.Errorf("c1 -> c2: %v", err)
	}
	if got := filterTable(t, n.host.ns); len(got) != 1 || got[0].VNI != 4242 || got[0].Name[0] != 'c' || got[0].Rules != 2 {
		t.Errorf("VTEP filter table: %+v, want the network's rules (VNI 4242, a CNI network's name)", got)
	}

	if err := n.host.cni.CheckNetworkList(ctx, list, rt1); err != nil {
		t.Errorf("CHECK c1: %v", err)
	}
	if err := n.host.cni.CheckNetworkList(ctx, list, rt2); err != nil {
		t.Errorf("CHECK c2: %v", err)
	}

	// DEL of c1, twice: the network stays for c2.
	for range 2 {
		if err := n.host.cni.DelNetworkList(ctx, list, rt1); err != nil {
			t.Fatalf("DEL c1: %v", err)
		}
	}
	if _, err := c1.TryIP("link", "show", "eth0"); err == nil {
		t.Error("c1 still has eth0 after DEL")
	}
	n.host.ns.LinkJSON(n.vx)
	n.host.ns.LinkJSON(n.br)

	// The vxlan link deleted behind the plugin's back: CHECK says so.
	n.host.ns.IP("link", "del", n.vx)
	err := n.host.cni.CheckNetworkList(ctx, list, rt2)
	if err == nil || !strings.Contains(err.Error(), n.vx) {
		t.Errorf("CHECK after the vxlan link was deleted: %v, want an error naming %s", err, n.vx)
	}
	t.Logf("CHECK with the vxlan link gone: %v", err)

	// DEL of the last container removes the network, twice is fine.
	for range 2 {
		if err := n.host.cni.DelNetworkList(ctx, list, rt2); err != nil {
			t.Fatalf("DEL c2: %v", err)
		}
	}
	n.checkGone(t, "after the last DEL")
	if got := filterTable(t, n.host.ns); len(got) != 0 {
		t.Errorf("VTEP filter table after the last DEL: %+v", got)
	}
}

// filterTable reads the VTEP filter's table in ns.
func filterTable(t *testing.T, ns *testns.NS) []vtepfilter.State {
	t.Helper()
	st, err := vtepfilter.ReadNetNS(t.Context(), ns.Open().Fd())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// ipamLeft lists the addresses host-local still has allocated.
func (h *cniHost) ipamLeft(t *testing.T) []string {
	t.Helper()
	var out []string
	dirs, _ := os.ReadDir(h.ipamDir)
	for _, d := range dirs {
		files, _ := os.ReadDir(h.ipamDir + "/" + d.Name())
		for _, f := range files {
			if name := f.Name(); name != "lock" && !strings.HasPrefix(name, "last_reserved_ip") {
				out = append(out, d.Name()+"/"+name)
			}
		}
	}
	return out
}

func TestIntegrationCNIBadConfig(t *testing.T) {
	n := newCNINet(t)
	c := testns.New(t)
	for _, tc := range []struct {
		name string
		keys map[string]any
		want string
	}{
		{"bad VNI", n.keys(0, map[string]any{"VxlanId": "abc"}), "option VxlanId=abc: "},
		{"VNI out of range", n.keys(16777216, nil), "option VxlanId=16777216: "},
		{"unknown option", n.keys(7, map[string]any{"Colour": "blue"}), "option Colour: unknown option; accepted: VxlanId mode"},
		{"not a bool", n.keys(7, map[string]any{"Learning": "maybe"}), "option Learning=maybe: "},
		{"an object", n.keys(7, map[string]any{"Port": map[string]int{"x": 1}}), `option Port={"x":1}: not a string, number, boolean or list of strings`},
		{"missing VTEP device", n.keys(7, map[string]any{"VtepDev": "nonesuch0"}), "option VtepDev=nonesuch0: no such interface on this host"},
		{"no VNI", map[string]any{"Learning": true}, "option VxlanId: missing"},
		{"bad mode", n.keys(7, map[string]any{"mode": "ipvlan"}), "option mode=ipvlan: unknown mode; accepted: bridge or macvlan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := n.host.conflist(t, n.name, "vxlan", "198.19.43.0/24", tc.keys)
			_, err := n.host.cni.AddNetworkList(t.Context(), list, runtimeConf("bad", c))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ADD: %v, want an error containing %q", err, tc.want)
			}
			if out := n.host.ns.IP("-o", "link", "show"); strings.Contains(out, n.vx) || strings.Contains(out, n.br) {
				t.Errorf("links left by a refused ADD:\n%s", out)
			}
			if left := n.host.ipamLeft(t); len(left) > 0 {
				t.Errorf("addresses left allocated by a refused ADD: %v", left)
			}
		})
	}
}

// A Docker network of the plugin and a CNI network with the same VNI on
// one host: the kernel has one vxlan link per VNI and port, so the CNI
// network joins the Docker network's segment, its containers' veths ports
// of the Docker network's bridge, when mode and settings agree, and DEL
// leaves the Docker network as it was. Otherwise, and for a vxlan link
// the plugin did not make, the ADD is refused with an error that says why.
func TestIntegrationCNISharesDockerSegment(t *testing.T) {
	n := newCNINet(t)
	ctx := t.Context()
	docker, dep, d := n.dockerNetwork(t, "d0c0e0f0a0b0c0d0e0f0a0b0c0d0e0f0a0b0c0d0e0f0a0b0c0d0e0f0a0b0c0d0", 4343, "198.19.44.200/24")

	list := n.host.conflist(t, n.name, "vxlan", "198.19.44.0/24", n.keys(4343, nil))
	c := testns.New(t)
	rt := runtimeConf("joins-docker", c)
	res, err := n.host.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		t.Fatalf("ADD on the Docker network's VNI: %v", err)
	}
	r, _ := current.NewResultFromResult(res)
	if r.Interfaces[0].Name != docker.Bridge.Name {
		t.Errorf("result's bridge %q, want the Docker network's %s", r.Interfaces[0].Name, docker.Bridge.Name)
	}
	if l := n.host.ns.LinkJSON(r.Interfaces[1].Name); l.Master != docker.Bridge.Name {
		t.Errorf("host end %s: master %q, want %s", l.Ifname, l.Master, docker.Bridge.Name)
	}
	if out := n.host.ns.IP("-o", "link", "show"); strings.Contains(out, n.vx) || strings.Contains(out, n.br) {
		t.Errorf("links of its own made for a network on a Docker segment:\n%s", out)
	}
	if err := c.Ping(netip.MustParseAddr("198.19.44.200"), 2); err != nil {
		t.Errorf("CNI container -> Docker container: %v", err)
	}
	if err := n.host.cni.CheckNetworkList(ctx, list, rt); err != nil {
		t.Errorf("CHECK: %v", err)
	}

	// Refusals: another mode, other settings, another CNI network, a link
	// the plugin did not make.
	other := testns.New(t)
	for _, tc := range []struct {
		name string
		list func() *libcni.NetworkConfigList
		want string
	}{
		{"macvlan mode", func() *libcni.NetworkConfigList {
			return n.host.conflist(t, n.name+"-m", "vxlan", "198.19.49.0/24", n.keys(4343, map[string]any{"mode": "macvlan"}))
		}, "option mode=macvlan: VNI 4343 is on this host the segment of Docker network d0c0e0f0a0b0, whose mode is bridge; a network joining it needs the same; accepted: bridge"},
		{"other settings", func() *libcni.NetworkConfigList {
			return n.host.conflist(t, n.name+"-l", "vxlan", "198.19.49.0/24", n.keys(4343, map[string]any{"Learning": false}))
		}, "VNI 4343 is on this host the segment of Docker network d0c0e0f0a0b0, which this network cannot join: network d0c0e0f0a0b0: vxlan " + docker.VXLAN.Name + ": Learning is true, want false"},
	} {
		_, err := n.host.cni.AddNetworkList(ctx, tc.list(), runtimeConf(strings.ReplaceAll(tc.name, " ", "-"), other))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	n.host.ns.IP("link", "add", "foreign0", "type", "vxlan", "id", "4444", "dstport", "4789", "dev", n.ul)
	_, err = n.host.cni.AddNetworkList(ctx, n.host.conflist(t, n.name+"-f", "vxlan", "198.19.49.0/24", n.keys(4444, nil)), runtimeConf("foreign", other))
	if want := "option VxlanId=4444: VNI 4444 on UDP port 4789 is already used by vxlan foreign0 (not created by this plugin)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("VNI of a link the plugin did not make: %v, want %q", err, want)
	}

	// Two CNI networks with one VNI: the second is refused, as the first's
	// links go with its last container.
	listA := n.host.conflist(t, n.name+"-a", "vxlan", "198.19.50.0/24", n.keys(4545, nil))
	if _, err := n.host.cni.AddNetworkList(ctx, listA, runtimeConf("cni-a", other)); err != nil {
		t.Fatal(err)
	}
	_, err = n.host.cni.AddNetworkList(ctx, n.host.conflist(t, n.name+"-b", "vxlan", "198.19.51.0/24", n.keys(4545, nil)), runtimeConf("cni-b", testns.New(t)))
	idA := networkID(n.name + "-a")
	if want := fmt.Sprintf(`option VxlanId=4545: VNI 4545 on UDP port 4789 is already used by vxlan vx_%s (alias "docker-vxlan-plugin net=%s")`, idA[:12], idA); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a second CNI network on a VNI: %v, want %q", err, want)
	}
	if err := n.host.cni.DelNetworkList(ctx, listA, runtimeConf("cni-a", other)); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if err := n.host.cni.DelNetworkList(ctx, list, rt); err != nil {
			t.Fatalf("DEL: %v", err)
		}
	}
	if _, err := c.TryIP("link", "show", "eth0"); err == nil {
		t.Error("the CNI container still has eth0 after DEL")
	}
	if vx := n.host.ns.LinkJSON(docker.VXLAN.Name); vx.Master != docker.Bridge.Name {
		t.Errorf("the Docker network's vxlan link after the CNI DEL: %+v", vx)
	}
	if err := d.Ping(netip.MustParseAddr("198.19.44.200"), 1); err != nil {
		t.Errorf("the Docker container lost its interface: %v", err)
	}
	if l := n.host.ns.LinkJSON(dep.HostIf); l.Master != docker.Bridge.Name {
		t.Errorf("the Docker container's host end after the CNI DEL: %+v", l)
	}
}

func TestIntegrationCNIMacvlan(t *testing.T) {
	n := newCNINet(t)
	list := n.host.conflist(t, n.name, "vxlan", "198.19.45.0/24", n.keys(4545, map[string]any{"mode": "macvlan"}))
	ctx := t.Context()
	c1, c2 := testns.New(t), testns.New(t)
	var addrs []netip.Addr
	for _, c := range []*testns.NS{c1, c2} {
		addrs = append(addrs, containerAddr(t, n.add(t, list, c)))
		if l := c.LinkJSON("eth0"); l.Linkinfo.InfoKind != "macvlan" || l.MTU != 1450 {
			t.Errorf("container eth0: %+v", l)
		}
		if err := n.host.cni.CheckNetworkList(ctx, list, runtimeConf(c.Name, c)); err != nil {
			t.Errorf("CHECK: %v", err)
		}
	}
	if err := c1.Ping(addrs[1], 2); err != nil {
		t.Errorf("c1 -> c2: %v", err)
	}
	for _, c := range []*testns.NS{c1, c2, c1} {
		if err := n.host.cni.DelNetworkList(ctx, list, runtimeConf(c.Name, c)); err != nil {
			t.Fatalf("DEL: %v", err)
		}
		if _, err := c.TryIP("link", "show", "eth0"); err == nil {
			t.Errorf("%s still has eth0 after DEL", c.Name)
		}
	}
	n.checkGone(t, "after the last DEL")
}

// GC (CNI 1.1) from a runtime that lost its cache: the plugin's records
// say which attachments exist, and those not listed as valid are removed,
// the network with the last. STATUS answers ready. Debian's host-local
// knows neither, so the plugin does not pass them on.
func TestIntegrationCNIGCAndStatus(t *testing.T) {
	n := newCNINet(t)
	list := n.host.conflist(t, n.name, "vxlan", "198.19.46.0/24", n.keys(4646, nil))
	ctx := t.Context()
	c1, c2 := testns.New(t), testns.New(t)
	n.add(t, list, c1)
	n.add(t, list, c2)
	v11 := *list
	v11.CNIVersion = "1.1.0"
	if err := n.host.cni.GetStatusNetworkList(ctx, &v11); err != nil {
		t.Errorf("STATUS: %v", err)
	}
	gc := n.host.forgetful(t)
	valid := []types.GCAttachment{{ContainerID: c2.Name, IfName: "eth0"}}
	if err := gc.GCNetworkList(ctx, &v11, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		t.Fatalf("GC keeping c2: %v", err)
	}
	if _, err := c1.TryIP("link", "show", "eth0"); err == nil {
		t.Error("c1 still has eth0 after a GC that did not list it")
	}
	if l := c2.LinkJSON("eth0"); l.Linkinfo.InfoKind != "veth" {
		t.Errorf("c2's eth0 after GC: %+v", l)
	}
	if err := n.host.cni.CheckNetworkList(ctx, list, runtimeConf(c2.Name, c2)); err != nil {
		t.Errorf("CHECK c2 after GC: %v", err)
	}
	if err := gc.GCNetworkList(ctx, &v11, &libcni.GCArgs{}); err != nil {
		t.Fatalf("GC of everything: %v", err)
	}
	n.checkGone(t, "after a GC with no valid attachment")
}

// Records decide when the network goes: one left by an ADD that died
// after writing it (before making anything) keeps the network up until
// the runtime's DEL for that container removes it.
func TestIntegrationCNICrashedAddRecord(t *testing.T) {
	n := newCNINet(t)
	list := n.host.conflist(t, n.name, "vxlan", "198.19.47.0/24", n.keys(4747, nil))
	ctx := t.Context()
	ghost, c1 := testns.New(t), testns.New(t)
	dir := n.host.stateDir + "/" + networkID(n.name)[:12]
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	rec := fmt.Sprintf(`{"containerID":%q,"ifname":"eth0","netns":%q,"endpointID":%q}`, ghost.Name, ghost.Path(), endpointID(ghost.Name, "eth0"))
	if err := os.WriteFile(dir+"/"+endpointID(ghost.Name, "eth0")+".json", []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	n.add(t, list, c1)
	if err := n.host.cni.DelNetworkList(ctx, list, runtimeConf(c1.Name, c1)); err != nil {
		t.Fatal(err)
	}
	n.host.ns.LinkJSON(n.vx) // still there: the crashed ADD's record
	if err := n.host.cni.DelNetworkList(ctx, list, runtimeConf(ghost.Name, ghost)); err != nil {
		t.Fatalf("DEL of the crashed ADD's container: %v", err)
	}
	n.checkGone(t, "after the last DEL")
}

// Concurrent ADDs and DELs of one network on one host, as a runtime
// starting and stopping containers at once: every container gets its
// interface, and the last DEL, whichever it is, removes the network.
func TestIntegrationCNIConcurrent(t *testing.T) {
	n := newCNINet(t)
	list := n.host.conflist(t, n.name, "vxlan", "198.19.48.0/24", n.keys(4848, nil))
	ctx := t.Context()
	var ctrs []*testns.NS
	for range 4 {
		ctrs = append(ctrs, testns.New(t))
	}
	each := func(op func(c *testns.NS) error) {
		t.Helper()
		errs := make(chan error, len(ctrs))
		for _, c := range ctrs {
			go func() { errs <- op(c) }()
		}
		for range ctrs {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	}
	each(func(c *testns.NS) error {
		_, err := n.host.cni.AddNetworkList(ctx, list, runtimeConf(c.Name, c))
		return err
	})
	for _, c := range ctrs {
		if l := c.LinkJSON("eth0"); l.Master != "" || l.MTU != 1450 {
			t.Errorf("%s eth0: %+v", c.Name, l)
		}
	}
	if out := n.host.ns.IP("-o", "link", "show", "master", n.br); strings.Count(out, "vh") != len(ctrs) {
		t.Errorf("bridge ports after %d concurrent ADDs:\n%s", len(ctrs), out)
	}
	each(func(c *testns.NS) error { return n.host.cni.DelNetworkList(ctx, list, runtimeConf(c.Name, c)) })
	n.checkGone(t, "after concurrent DELs")
}

// An ADD repeated without DEL fails (host-local refuses a second
// allocation, the container has the interface) and leaves the first
// attachment working, with its record: its DEL removes the network.
func TestIntegrationCNIRepeatedAdd(t *testing.T) {
	n := newCNINet(t)
	list := n.host.conflist(t, n.name, "vxlan", "198.19.52.0/24", n.keys(5252, nil))
	ctx := t.Context()
	c := testns.New(t)
	rt := runtimeConf(c.Name, c)
	if _, err := n.host.cni.AddNetworkList(ctx, list, rt); err != nil {
		t.Fatal(err)
	}
	if _, err := n.host.cni.AddNetworkList(ctx, list, rt); err == nil {
		t.Fatal("a second ADD of the attachment succeeded")
	}
	if err := n.host.cni.CheckNetworkList(ctx, list, rt); err != nil {
		t.Errorf("CHECK after the failed second ADD: %v", err)
	}
	if err := n.host.cni.DelNetworkList(ctx, list, rt); err != nil {
		t.Fatal(err)
	}
	n.checkGone(t, "after DEL")
}

// HostGateway=true puts the IPAM gateway on the bridge: the host reaches
// its containers, and the address goes with the network.
func TestIntegrationCNIHostGateway(t *testing.T) {
	n := newCNINet(t)
	list := n.host.conflist(t, n.name, "vxlan", "198.19.53.0/24", n.keys(5353, map[string]any{"HostGateway": true}))
	ctx := t.Context()
	c := testns.New(t)
	r := n.add(t, list, c)
	if out := n.host.ns.IP("-4", "-o", "addr", "show", "dev", n.br); !strings.Contains(out, "198.19.53.1/24") {
		t.Errorf("bridge addresses: %q, want the gateway 198.19.53.1/24", out)
	}
	if err := n.host.ns.Ping(containerAddr(t, r), 2); err != nil {
		t.Errorf("host -> container: %v", err)
	}
	if err := n.host.cni.DelNetworkList(ctx, list, runtimeConf(c.Name, c)); err != nil {
		t.Fatal(err)
	}
	if out := n.host.ns.IP("-o", "link", "show"); strings.Contains(out, n.br) {
		t.Errorf("bridge left after the last DEL:\n%s", out)
	}
}

// Dual stack: host-local gives an IPv4 and an IPv6 address; both are on
// the container's interface, with their default routes, and the
// containers reach each other over both.
func TestIntegrationCNIDualStack(t *testing.T) {
	n := newCNINet(t)
	p := n.keys(5454, nil)
	p["type"] = "vxlan"
	p["ipam"] = map[string]any{"type": "host-local", "dataDir": n.host.ipamDir,
		"ranges": [][]map[string]string{{{"subnet": "198.19.54.0/24"}}, {{"subnet": "fd00:54::/64"}}},
		"routes": []map[string]string{{"dst": "0.0.0.0/0"}, {"dst": "::/0"}},
	}
	b, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": n.name, "plugins": []any{p}})
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := testns.New(t), testns.New(t)
	var six []netip.Addr
	for _, c := range []*testns.NS{c1, c2} {
		r := n.add(t, list, c)
		if len(r.IPs) != 2 {
			t.Fatalf("%s: %d addresses, want 2", c.Name, len(r.IPs))
		}
		a, _ := netip.AddrFromSlice(r.IPs[1].Address.IP)
		six = append(six, a)
		if out := c.IP("-6", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, r.IPs[1].Address.String()) {
			t.Errorf("%s: IPv6 address %s missing: %s", c.Name, r.IPs[1].Address.String(), out)
		}
		if out := c.IP("-6", "route", "show", "default"); !strings.Contains(out, "via fd00:54::1 dev eth0") {
			t.Errorf("%s: IPv6 default route: %q", c.Name, out)
		}
		if err := n.host.cni.CheckNetworkList(t.Context(), list, runtimeConf(c.Name, c)); err != nil {
			t.Errorf("CHECK %s: %v", c.Name, err)
		}
	}
	if err := c1.Ping(six[1], 3); err != nil {
		t.Errorf("c1 -> c2 over IPv6: %v", err)
	}
	for _, c := range []*testns.NS{c1, c2} {
		if err := n.host.cni.DelNetworkList(t.Context(), list, runtimeConf(c.Name, c)); err != nil {
			t.Fatal(err)
		}
	}
	n.checkGone(t, "after the last DEL")
}

// dockerNetwork makes on the host the network of the given ID and VNI as
// the Docker plugin makes it, and a container of it at addr, as the Docker
// plugin makes one, in a namespace of its own (returned last).
func (n *cniNet) dockerNetwork(t *testing.T, id string, vni int, addr string) (*fabric.NetworkSpec, *fabric.Endpoint, *testns.NS) {
	t.Helper()
	ctx := t.Context()
	host := linuxhost.New(n.host.ns.Dial())
	opts := map[string]string{"VxlanId": fmt.Sprint(vni), "VtepDev": n.ul, "Peers": "198.18.40.2"}
	docker, err := fabric.Resolve(ctx, host, opts, fabric.ResolveConfig{ID: id, Scope: fabric.ScopeGlobal})
	if err != nil {
		t.Fatal(err)
	}
	if err := host.CreateNetwork(ctx, docker); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.DeleteNetwork(context.WithoutCancel(ctx), docker, false) })
	d := testns.New(t)
	ep := fabric.NewEndpoint("dockerendpoint"+id[:2], netip.MustParsePrefix(addr))
	if err := host.CreateEndpoint(ctx, docker, ep, &linuxhost.ContainerNS{NetNS: d.Open(), IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	d.IP("addr", "add", addr, "dev", "eth0")
	d.IP("link", "set", "eth0", "up")
	return docker, ep, d
}
