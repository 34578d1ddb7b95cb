package main

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// ipamHosts starts n Docker engines on one Fabric (198.18.20.1 to .n),
// each with the plugin.
func ipamHosts(t *testing.T, n int) ([]*dockerhost.Host, []string, string) {
	t.Helper()
	dockerhost.Require(t)
	bin := buildPlugin(t)
	fab := dockerhost.NewFabric(t)
	var hosts []*dockerhost.Host
	var addrs []string
	for range n {
		ns, addr := fab.Add()
		h := dockerhost.Start(t, ns)
		h.StartPlugin(bin, "-d", "-vtepdev", dockerhost.Underlay, "-state-dir", h.StateDir())
		h.ImportBusybox("bb")
		hosts, addrs = append(hosts, h), append(addrs, addr.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, h := range hosts {
				t.Logf("plugin log, host %d:\n%s", i, h.PluginLog())
			}
		}
	})
	return hosts, addrs, bin
}

// container is a container's addresses as dockerd reports them.
type container struct {
	host       int
	name       string
	ipv4, ipv6 string
	mac        string
}

// runAll starts per containers on every host at once, without --ip, and
// returns them.
func runAll(t *testing.T, hosts []*dockerhost.Host, network, prefix string, per int) []container {
	t.Helper()
	var mu sync.Mutex
	var out []container
	var wg sync.WaitGroup
	for hi, h := range hosts {
		for i := range per {
			wg.Go(func() {
				name := fmt.Sprintf("%s%d-%d", prefix, hi, i)
				if _, err := h.Docker("run", "-d", "--name", name, "--net", network, "bb", "sleep", "600"); err != nil {
					t.Errorf("host %d: docker run %s: %v", hi, name, err)
					return
				}
				c := inspectContainer(t, h, network, name)
				c.host = hi
				mu.Lock()
				out = append(out, c)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

func inspectContainer(t *testing.T, h *dockerhost.Host, network, name string) container {
	t.Helper()
	f := fmt.Sprintf("{{with index .NetworkSettings.Networks %q}}{{.IPAddress}} {{.GlobalIPv6Address}} {{.MacAddress}}{{end}}", network)
	out, err := h.Docker("inspect", "-f", f, name)
	if err != nil {
		t.Errorf("inspect %s: %v", name, err)
		return container{name: name}
	}
	fields := strings.Fields(out)
	c := container{name: name}
	switch len(fields) {
	case 3:
		c.ipv4, c.ipv6, c.mac = fields[0], fields[1], fields[2]
	case 2:
		c.ipv4, c.mac = fields[0], fields[1]
	default:
		t.Errorf("inspect %s: %q", name, out)
	}
	return c
}

// noAddressTwice fails the test for every address two containers have.
func noAddressTwice(t *testing.T, cs []container) {
	t.Helper()
	seen := map[string]string{}
	for _, c := range cs {
		for _, a := range []string{c.ipv4, c.ipv6} {
			if a == "" {
				continue
			}
			if o, dup := seen[a]; dup {
				t.Errorf("address %s handed out twice: %s and %s (host %d)", a, o, c.name, c.host)
			}
			seen[a] = c.name
		}
	}
}

// The IPAM driver on three dockerd hosts of one segment, for every kind
// of network (the engines are shared: starting them is most of the cost).
func TestIntegrationIPAM(t *testing.T) {
	hosts, addrs, bin := ipamHosts(t, 3)
	t.Run("macvlan-and-parent", func(t *testing.T) { ipamMacvlanAndParent(t, hosts, addrs) })
	t.Run("bridge", func(t *testing.T) { ipamBridge(t, hosts, addrs, bin) })
}

// Three hosts create the same network with the plugin's IPAM driver (dual
// stack), start containers at once without --ip: no address twice, every
// container reaches the others and its gateway; a restarted plugin keeps
// its leases; an address another host holds is refused with its MAC.
func ipamBridge(t *testing.T, hosts []*dockerhost.Host, addrs []string, bin string) {
	peers := strings.Join(addrs, ",")
	for _, h := range hosts {
		h.MustDocker("network", "create", "-d", "vxlan", "--ipam-driver", "vxlan", "--ipv6",
			"--subnet", "198.18.60.0/24", "--subnet", "fd00:60::/64", "-o", "VxlanId=60", "-o", "Peers="+peers, "n60")
	}
	cs := runAll(t, hosts, "n60", "a", 3)
	noAddressTwice(t, cs)
	for _, c := range cs {
		if c.ipv4 == "" || c.ipv6 == "" {
			t.Errorf("%s: addresses %q and %q, want both families", c.name, c.ipv4, c.ipv6)
		}
		if a := mustAddr(c.ipv4); a == mustAddr("198.18.60.0") || a == mustAddr("198.18.60.1") || a == mustAddr("198.18.60.255") {
			t.Errorf("%s got %s: the network, gateway or broadcast address", c.name, a)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// The first container of each host reaches one container of its own
	// host and every container of the others, in both families (and its
	// gateway: anycastGateway).
	for hi, h := range hosts {
		from := fmt.Sprintf("a%d-0", hi)
		for _, c := range cs {
			if c.name == from || c.host == hi && !strings.HasSuffix(c.name, "-1") {
				continue // other hosts' containers, and one of its own
			}
			for _, dst := range []string{c.ipv4, c.ipv6} {
				if out, err := h.Docker("exec", from, "ping", "-c1", "-W2", dst); err != nil {
					t.Errorf("%s → %s (%s, host %d): %v\n%s", from, c.name, dst, c.host, err, out)
				}
			}
		}
	}

	anycastGateway(t, hosts, cs, "a")

	// A requested address that a container of another host holds is
	// refused, naming the address and the MAC that answered.
	taken := cs[0]
	other := hosts[(taken.host+1)%len(hosts)]
	out, err := other.Docker("run", "-d", "--name", "thief", "--net", "n60", "--ip", taken.ipv4, "bb", "sleep", "600")
	if err == nil {
		t.Errorf("docker run --ip %s on a host where %s holds it on another host succeeded: %s", taken.ipv4, taken.name, out)
	} else if !strings.Contains(err.Error(), taken.ipv4) || !strings.Contains(strings.ToLower(err.Error()), taken.mac) {
		t.Errorf("refusal of --ip %s names neither the address nor the holder's MAC %s: %v", taken.ipv4, taken.mac, err)
	}
	other.Docker("rm", "-f", "thief")

	// The plugin of host 1 restarts and dockerd of host 2; containers are
	// replaced while the other hosts start more: still no address twice.
	h1 := hosts[1]
	if err := h1.StopPlugin(syscall.SIGTERM); err != nil {
		t.Logf("plugin stop: %v", err)
	}
	h1.StartPlugin(bin, "-d", "-vtepdev", dockerhost.Underlay, "-state-dir", h1.StateDir())
	// dockerd of host 2 restarts: it asks the plugin again for its pools
	// and addresses, and its containers stop (releasing theirs).
	hosts[2].RestartDockerd()
	hosts[2].StartPlugin(bin, "-d", "-vtepdev", dockerhost.Underlay, "-state-dir", hosts[2].StateDir())
	var kept []container
	for _, c := range cs {
		if c.host == 2 {
			continue
		}
		if c.host == 1 && strings.HasSuffix(c.name, "-0") {
			kept = append(kept, c)
			continue
		}
		if c.host == 1 {
			h1.MustDocker("rm", "-f", c.name)
			continue
		}
		kept = append(kept, c)
	}
	more := runAll(t, hosts, "n60", "b", 2)
	all := append(kept, more...)
	noAddressTwice(t, all)
	// The restarted plugin adopted the anycast gateway and the host's own
	// addresses as they were: the same checks pass with the new containers.
	var firsts []container
	for _, c := range more {
		if strings.HasSuffix(c.name, "-0") {
			firsts = append(firsts, c)
		}
	}
	anycastGateway(t, hosts, firsts, "b")
	t.Logf("%d containers on 3 hosts, %d addresses per family, none twice", len(all), len(all))
}

// Every kind of network takes the allocator: a vxlan network in macvlan
// mode and a parent network (macvlan on the hosts' shared underlay).
func ipamMacvlanAndParent(t *testing.T, hosts []*dockerhost.Host, addrs []string) {
	peers := strings.Join(addrs, ",")
	for _, h := range hosts {
		h.MustDocker("network", "create", "-d", "vxlan", "--ipam-driver", "vxlan", "--subnet", "198.18.62.0/24",
			"-o", "VxlanId=62", "-o", "mode=macvlan", "-o", "Peers="+peers, "m62")
		h.MustDocker("network", "create", "-d", "vxlan", "--ipam-driver", "vxlan", "--subnet", "198.18.63.0/24",
			"-o", "parent="+dockerhost.Underlay, "p63")
	}
	for _, network := range []string{"m62", "p63"} {
		cs := runAll(t, hosts, network, network+"-", 3)
		noAddressTwice(t, cs)
		// Containers on different hosts reach each other (macvlan children
		// of one parent do not reach each other on one host in every mode,
		// so only across hosts).
		for _, c := range cs {
			for _, d := range cs {
				if c.host != d.host && c.host == 0 {
					if out, err := hosts[c.host].Docker("exec", c.name, "ping", "-c1", "-W2", d.ipv4); err != nil {
						t.Errorf("%s → %s (%s): %v\n%s", c.name, d.name, d.ipv4, err, out)
					}
				}
			}
		}
	}
}

// anycastGateway checks n60's anycast gateway: the first container of
// each host (named prefix<host>-0) reaches the gateway and has it, in both
// families, at the one MAC derived from the
// network, and each host reaches the containers of the other hosts from
// its own namespace, through an address of its own on the bridge that no
// container and no other host has.
func anycastGateway(t *testing.T, hosts []*dockerhost.Host, cs []container, prefix string) {
	t.Helper()
	want := (&fabric.NetworkSpec{VXLAN: vxlan.Config{VNI: 60}}).GatewayMAC().String()
	for hi, h := range hosts {
		from := fmt.Sprintf("%s%d-0", prefix, hi)
		for _, gw := range []string{"198.18.60.1", "fd00:60::1"} {
			if out, err := h.Docker("exec", from, "ping", "-c1", "-W2", gw); err != nil {
				t.Errorf("%s → gateway %s: %v\n%s", from, gw, err, out)
			}
			family := "-4"
			if strings.Contains(gw, ":") {
				family = "-6"
			}
			out, err := h.Docker("exec", from, "ip", family, "neigh", "show", gw)
			if f := strings.Fields(out); err != nil || len(f) < 5 || f[3] != "lladdr" || f[4] != want {
				t.Errorf("%s (host %d) has gateway %s at %q (%v), want the anycast MAC %s", from, hi, gw, out, err, want)
			}
		}
	}
	id := strings.TrimSpace(hosts[0].MustDocker("network", "inspect", "-f", "{{.Id}}", "n60"))
	held := map[string]string{}
	for _, c := range cs {
		held[c.ipv4], held[c.ipv6] = c.name, c.name
	}
	for hi, h := range hosts {
		bridge := fabric.BridgeLinkName(strings.TrimSpace(h.MustDocker("network", "inspect", "-f", "{{.Id}}", "n60")))
		out := h.NS.IP("-br", "addr", "show", "dev", bridge)
		var own []string
		for _, f := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(f); err == nil && !p.Addr().IsLinkLocalUnicast() {
				own = append(own, p.Addr().String())
			}
		}
		if len(own) != 2 {
			t.Errorf("host %d: bridge %s carries %v, want one address of its own per family", hi, bridge, own)
		}
		for _, a := range own {
			if a == "198.18.60.1" || a == "fd00:60::1" {
				t.Errorf("host %d: the gateway %s is on the bridge", hi, a)
			}
			if who, ok := held[a]; ok {
				t.Errorf("host %d: its own address %s is %s's too", hi, a, who)
			}
			held[a] = fmt.Sprintf("host %d", hi)
		}
		for _, c := range cs {
			if c.host == hi {
				continue
			}
			for _, dst := range []string{c.ipv4, c.ipv6} {
				if err := h.NS.Ping(mustAddr(dst), 1); err != nil {
					t.Errorf("host %d → %s (%s, host %d): %v", hi, c.name, dst, c.host, err)
				}
			}
		}
	}
	t.Logf("network %.12s: containers on %d hosts see the gateway at %s; each host reaches the others' containers", id, len(hosts), want)
}
