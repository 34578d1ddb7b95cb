package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// ipamHost is a CNI host of a two-host segment whose vxlan network takes
// its addresses from vxlan-ipam.
type ipamHost struct {
	*cniHost
	list *libcni.NetworkConfigList
}

// ipamSegment makes two host namespaces cabled to each other and, on each,
// the vxlan network name (VNI vni, each host the other's peer) with
// vxlan-ipam over the given ranges, the vxlan plugin taking the ips
// capability.
func ipamSegment(t *testing.T, name string, vni int, ranges ...map[string]string) []*ipamHost {
	t.Helper()
	requireCNI(t)
	nsA, nsB := testns.New(t), testns.New(t)
	ulA, ulB := testns.Underlay(t, nsA, nsB, netip.MustParsePrefix("198.18.90.1/24"), netip.MustParsePrefix("198.18.90.2/24"))
	var hosts []*ipamHost
	for _, h := range []struct {
		ns       *testns.NS
		ul, peer string
	}{{nsA, ulA, "198.18.90.2"}, {nsB, ulB, "198.18.90.1"}} {
		ch := newCNIHost(t, h.ns)
		l := confList(t, "1.1.0", name, map[string]any{
			"type": "vxlan", "VxlanId": vni, "VtepDev": h.ul, "Peers": []string{h.peer},
			"capabilities": map[string]bool{"ips": true},
			"ipam": map[string]any{"type": IPAMPluginType, "dataDir": ch.ipamDir, "ranges": ranges,
				"routes": []map[string]string{{"dst": "198.19.0.0/16"}}},
		})
		hosts = append(hosts, &ipamHost{cniHost: ch, list: l})
	}
	return hosts
}

// attached is a container's attachment and what ADD gave it.
type attached struct {
	host  int
	id    string
	ns    *testns.NS
	addrs []netip.Addr
	mac   string
}

// add attaches a new container (its ID id) with the addresses asked for,
// if any.
func (h *ipamHost) add(t *testing.T, id string, ips ...string) (*attached, error) {
	ns := testns.New(t)
	rt := runtimeConf(id, ns)
	if len(ips) > 0 {
		rt.CapabilityArgs = map[string]any{"ips": ips}
	}
	res, err := h.cni.AddNetworkList(t.Context(), h.list, rt)
	if err != nil {
		return nil, err
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	a := &attached{id: id, ns: ns, mac: r.Interfaces[len(r.Interfaces)-1].Mac}
	for _, ip := range r.IPs {
		p, _ := prefixOf(ip.Address)
		a.addrs = append(a.addrs, p.Addr())
	}
	t.Cleanup(func() { _ = h.cni.DelNetworkList(t.Context(), h.list, rt) })
	return a, nil
}

func (h *ipamHost) del(t *testing.T, a *attached) {
	t.Helper()
	if err := h.cni.DelNetworkList(t.Context(), h.list, runtimeConf(a.id, a.ns)); err != nil {
		t.Fatalf("DEL %s: %v", a.id, err)
	}
}

// noneTwice fails the test if an address was given to two attachments.
func noneTwice(t *testing.T, all []*attached) {
	t.Helper()
	seen := map[netip.Addr]string{}
	for _, a := range all {
		for _, ad := range a.addrs {
			who := fmt.Sprintf("host %d container %s", a.host, a.id)
			if o, ok := seen[ad]; ok {
				t.Errorf("address %s given twice: to %s and %s", ad, o, who)
			}
			seen[ad] = who
		}
	}
}

// Two hosts of one segment, each with its own leases and nothing shared:
// host A fills half of a dual-stack range, host B gets exactly the other
// half (it skips what A's containers answer for), and then nothing: the
// range is exhausted on the segment (code 11). An address asked for that a
// container of A holds is refused on B with that container's MAC; once A
// releases it, B gets it. CHECK finds the lease; DEL of an unknown
// attachment is not an error.
func TestIntegrationCNIIPAMTwoHosts(t *testing.T) {
	hosts := ipamSegment(t, "vxipam", 90,
		map[string]string{"subnet": "198.19.90.0/24", "range": "198.19.90.0/29"},
		map[string]string{"subnet": "fd00:90::/64", "range": "fd00:90::/125"})
	// In each range: 8 addresses less the network's (or subnet-router
	// anycast) address and the gateway, .1 and ::1.
	const size = 6
	var all []*attached
	for i := range size {
		h := i * 2 / size // the first half on host A
		a, err := hosts[h].add(t, fmt.Sprintf("c%d", i))
		if err != nil {
			t.Fatalf("host %d: ADD %d: %v", h, i, err)
		}
		a.host = h
		if len(a.addrs) != 2 || !a.addrs[0].Is4() || !a.addrs[1].Is6() {
			t.Fatalf("host %d: addresses %v, want one IPv4 and one IPv6", h, a.addrs)
		}
		all = append(all, a)
	}
	t.Logf("addresses: %v", func() (s []string) {
		for _, a := range all {
			s = append(s, fmt.Sprintf("%d:%v", a.host, a.addrs))
		}
		return s
	}())
	noneTwice(t, all)
	for _, a := range all {
		for _, ad := range a.addrs {
			if ad == netip.MustParseAddr("198.19.90.1") || ad == netip.MustParseAddr("fd00:90::1") ||
				ad == netip.MustParseAddr("198.19.90.0") || ad == netip.MustParseAddr("fd00:90::") {
				t.Errorf("container %s got %s, the gateway or the subnet's own address", a.id, ad)
			}
		}
	}
	_, err := hosts[1].add(t, "full")
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != types.ErrTryAgainLater || !strings.Contains(ce.Msg, "no free address") {
		t.Errorf("ADD on a segment whose range is taken: %v, want code 11 and no free address", err)
	}

	// An address a container of host A holds, asked for on host B.
	held := all[0]
	_, err = hosts[1].add(t, "want", held.addrs[0].String())
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("address %s is in use on the segment: %s answered for it", held.addrs[0], held.mac)) {
		t.Errorf("ADD on host B asking for %s, held by host A's container (MAC %s): %v", held.addrs[0], held.mac, err)
	}
	if err := hosts[0].cni.CheckNetworkList(t.Context(), hosts[0].list, runtimeConf(held.id, held.ns)); err != nil {
		t.Errorf("CHECK of host A's container: %v", err)
	}
	hosts[0].del(t, held)
	got, err := hosts[1].add(t, "want2", held.addrs[0].String(), held.addrs[1].String())
	if err != nil {
		t.Fatalf("ADD on host B asking for %v, released by host A: %v", held.addrs, err)
	}
	if !slices.Equal(got.addrs, held.addrs) {
		t.Errorf("ADD on host B asking for %v: got %v", held.addrs, got.addrs)
	}
	if err := hosts[0].cni.DelNetworkList(t.Context(), hosts[0].list, runtimeConf("never-added", testns.New(t))); err != nil {
		t.Errorf("DEL of an attachment never added: %v", err)
	}

	// GC (CNI 1.1.0) from a runtime that lost its cache keeps the leases
	// of the attachments it lists, and only those; STATUS is ready.
	b := hosts[1]
	keep := all[size-1]
	valid := []types.GCAttachment{{ContainerID: keep.id, IfName: "eth0"}}
	if err := b.forgetful(t).GCNetworkList(t.Context(), b.list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	var left []string
	for _, a := range keep.addrs {
		left = append(left, a.String())
	}
	if got := leaseNames(t, b.ipamDir, "vxipam"); !slices.Equal(got, append(left, "lock")) {
		t.Errorf("leases after GC keeping %s: %v, want %v and the lock", keep.id, got, left)
	}
	if err := b.cni.GetStatusNetworkList(t.Context(), b.list); err != nil {
		t.Errorf("STATUS: %v", err)
	}
}

// leaseNames lists the files of a network's lease directory, sorted.
func leaseNames(t *testing.T, dataDir, network string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, network))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// Both hosts attach containers at once, several on each, from one range:
// no address is given twice, and every container reaches the others.
func TestIntegrationCNIIPAMConcurrent(t *testing.T) {
	hosts := ipamSegment(t, "vxipamc", 91,
		map[string]string{"subnet": "198.19.91.0/24", "range": "198.19.91.0/28"},
		map[string]string{"subnet": "fd00:91::/64", "range": "fd00:91::/124"})
	const per = 4
	var mu sync.Mutex
	var all []*attached
	var wg sync.WaitGroup
	for hi, h := range hosts {
		for i := range per {
			wg.Go(func() {
				a, err := h.add(t, fmt.Sprintf("h%dc%d", hi, i))
				if err != nil {
					t.Errorf("host %d: ADD %d: %v", hi, i, err)
					return
				}
				a.host = hi
				mu.Lock()
				all = append(all, a)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	noneTwice(t, all)
	src := all[0]
	for _, dst := range all[1:] {
		for _, ad := range dst.addrs {
			if err := src.ns.Ping(ad, 1); err != nil {
				t.Errorf("container %s (host %d) -> %s (host %d, %s): %v", src.id, src.host, dst.id, dst.host, ad, err)
			}
		}
	}
}

// Under CNI's own bridge plugin, vxlan-ipam probes through the plugin's
// bridge (its "bridge" key): a second network on the same bridge, with
// leases of its own, is refused the address the first network's container
// holds, with that container's MAC, and gets another.
func TestIntegrationCNIIPAMUnderBridgePlugin(t *testing.T) {
	requireCNI(t)
	h := newCNIHost(t, testns.New(t))
	list := func(name string) *libcni.NetworkConfigList {
		return confList(t, "1.0.0", name, map[string]any{
			"type": "bridge", "bridge": "cnibr-ipam", "capabilities": map[string]bool{"ips": true},
			"ipam": map[string]any{"type": IPAMPluginType, "dataDir": h.ipamDir, "subnet": "198.19.93.0/24", "range": "198.19.93.0/29"},
		})
	}
	first, second := &ipamHost{cniHost: h, list: list("brnet1")}, &ipamHost{cniHost: h, list: list("brnet2")}
	a, err := first.add(t, "c1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = second.add(t, "c2", a.addrs[0].String())
	want := fmt.Sprintf("address %s is in use on the segment: %s answered for it", a.addrs[0], a.mac)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ADD on the second network asking for %s: %v, want %q", a.addrs[0], err, want)
	}
	b, err := second.add(t, "c3")
	if err != nil {
		t.Fatal(err)
	}
	if b.addrs[0] == a.addrs[0] {
		t.Errorf("both networks' containers got %s", a.addrs[0])
	}
}

// A vxlan network that joins a Docker network's segment on its host
// probes through that network's bridge: an address a Docker container
// holds is refused with its MAC.
func TestIntegrationCNIIPAMOnDockerSegment(t *testing.T) {
	n := newCNINet(t)
	_, dep, _ := n.dockerNetwork(t, "d1c0e0f0a0b0c0d0e0f0a0b0c0d0e0f0a0b0c0d0e0f0a0b0c0d0e0f0a0b0c0d1", 4344, "198.19.94.2/24")
	p := n.keys(4344, map[string]any{"type": "vxlan", "capabilities": map[string]bool{"ips": true},
		"ipam": map[string]any{"type": IPAMPluginType, "dataDir": n.host.ipamDir, "subnet": "198.19.94.0/24", "range": "198.19.94.0/29"}})
	h := &ipamHost{cniHost: n.host, list: confList(t, "1.0.0", n.name, p)}
	_, err := h.add(t, "want", "198.19.94.2")
	want := fmt.Sprintf("address 198.19.94.2 is in use on the segment: %s answered for it", dep.MAC)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ADD asking for the Docker container's address: %v, want %q", err, want)
	}
	a, err := h.add(t, "any")
	if err != nil {
		t.Fatal(err)
	}
	if a.addrs[0] == netip.MustParseAddr("198.19.94.2") {
		t.Errorf("the CNI container got the Docker container's address %s", a.addrs[0])
	}
	if err := a.ns.Ping(netip.MustParseAddr("198.19.94.2"), 2); err != nil {
		t.Errorf("CNI container -> Docker container: %v", err)
	}
}

// A link to probe through that is not on the host is a CNI error of code
// 11 (try again later), and nothing is leased.
func TestIntegrationCNIIPAMMissingLink(t *testing.T) {
	requireCNI(t)
	h := newCNIHost(t, testns.New(t))
	// vxlan-ipam called by libcni as the network's plugin: it reads the
	// "ipam" section of what it is given.
	list := confList(t, "1.0.0", "nolink", map[string]any{"type": IPAMPluginType,
		"ipam": map[string]any{"dataDir": h.ipamDir, "subnet": "198.19.95.0/24", "link": "nosuch0"}})
	_, err := h.cni.AddNetworkList(t.Context(), list, runtimeConf("c", testns.New(t)))
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != types.ErrTryAgainLater || !strings.Contains(ce.Msg, "the link nosuch0 to probe the segment through is not on this host") {
		t.Errorf("ADD probing through a missing link: %v, want code 11 naming the link", err)
	}
	if got := leaseNames(t, h.ipamDir, "nolink"); !slices.Equal(got, []string{"lock"}) {
		t.Errorf("lease directory after a failed ADD: %v", got)
	}
}
