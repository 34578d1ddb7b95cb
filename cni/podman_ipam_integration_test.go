package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/podmanhost"
)

// mixedContainer is a container of the mixed segment: which engine runs
// it, and its addresses.
type mixedContainer struct {
	engine, name string
	addrs        []netip.Addr
}

func (c mixedContainer) String() string { return fmt.Sprintf("%s %s %v", c.engine, c.name, c.addrs) }

// Podman on one host (the vxlan CNI plugin with vxlan-ipam) and Docker on
// another (the plugin's network and IPAM drivers) on one segment: the same
// VNI, subnets and range, each host the other's peer. Containers started
// on both at once get no address twice and reach each other; an address
// a Docker container holds, asked for with podman run --ip, is refused
// with that container's MAC.
func TestIntegrationPodmanDockerIPAM(t *testing.T) {
	dockerhost.Require(t)
	podmanhost.Require(t)
	bin := buildDockerPlugin(t)
	fab := dockerhost.NewFabric(t)
	nsP, addrP := fab.Add()
	nsD, addrD := fab.Add()
	peers := addrP.String() + "," + addrD.String()

	d := dockerhost.Start(t, nsD)
	d.StartPlugin(bin, "-d", "-vtepdev", dockerhost.Underlay, "-state-dir", d.StateDir())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log:\n%s", d.PluginLog())
		}
	})
	d.ImportBusybox("bb")
	d.MustDocker("network", "create", "-d", "vxlan", "--ipam-driver", "vxlan", "--ipv6",
		"--subnet", "198.19.92.0/24", "--ip-range", "198.19.92.0/28", "--subnet", "fd00:92::/64", "--ip-range", "fd00:92::/124",
		"-o", "VxlanId=92", "-o", "Peers="+peers, "net92")

	p := podmanhost.Start(t, nsP, pluginDir(t))
	conf, err := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "vx92", "plugins": []any{map[string]any{
		"type": "vxlan", "VxlanId": 92, "VtepDev": dockerhost.Underlay, "Peers": strings.Split(peers, ","),
		"capabilities": map[string]bool{"ips": true},
		"ipam": map[string]any{"type": IPAMPluginType, "ranges": []map[string]string{
			{"subnet": "198.19.92.0/24", "range": "198.19.92.0/28"}, {"subnet": "fd00:92::/64", "range": "fd00:92::/124"}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	p.AddNetwork("vx92", conf)
	p.ImportBusybox("busybox")

	const per = 3
	var mu sync.Mutex
	var all []mixedContainer
	var wg sync.WaitGroup
	// start runs a container with the engine's command line cli and reads
	// its addresses.
	start := func(engine, name string, cli func(...string) (string, error), network string, args ...string) {
		if _, err := cli(append([]string{"run", "-d", "--name", name}, args...)...); err != nil {
			t.Errorf("%s run %s: %v", engine, name, err)
			return
		}
		f := fmt.Sprintf("{{with index .NetworkSettings.Networks %q}}{{.IPAddress}} {{.GlobalIPv6Address}}{{end}}", network)
		out, err := cli("inspect", "-f", f, name)
		mu.Lock()
		defer mu.Unlock()
		all = append(all, mixedContainer{engine, name, parseAddrs(t, name, out, err)})
	}
	for i := range per {
		wg.Go(func() {
			start("podman", fmt.Sprintf("p%d", i), p.Podman, "vx92", "--network", "vx92", "--runtime", "crun", "--cgroups=disabled",
				"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "busybox", "sleep", "1000")
		})
		wg.Go(func() {
			start("docker", fmt.Sprintf("d%d", i), d.Docker, "net92", "--net", "net92", "bb", "sleep", "1000")
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("containers: %v", all)
	seen := map[netip.Addr]string{}
	for _, c := range all {
		if len(c.addrs) != 2 {
			t.Errorf("%s %s: addresses %v, want an IPv4 and an IPv6 one", c.engine, c.name, c.addrs)
		}
		for _, a := range c.addrs {
			if o, dup := seen[a]; dup {
				t.Errorf("address %s handed out twice: %s and %s %s", a, o, c.engine, c.name)
			}
			seen[a] = c.engine + " " + c.name
		}
	}
	for _, c := range all {
		for _, a := range c.addrs {
			if out, err := p.Podman("exec", "p0", "ping", "-c", "1", "-W", "2", a.String()); c.name != "p0" && err != nil {
				t.Errorf("podman p0 -> %s %s (%s): %v\n%s", c.engine, c.name, a, err, out)
			}
			if out, err := d.Docker("exec", "d0", "ping", "-c", "1", "-W", "2", a.String()); c.name != "d0" && err != nil {
				t.Errorf("docker d0 -> %s %s (%s): %v\n%s", c.engine, c.name, a, err, out)
			}
		}
	}

	// podman run --ip of an address a Docker container holds.
	held := all[0]
	for _, c := range all {
		if c.engine == "docker" {
			held = c
			break
		}
	}
	mac, err := d.Docker("inspect", "-f", "{{.NetworkSettings.Networks.net92.MacAddress}}", held.name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Podman("run", "-d", "--name", "pwant", "--network", "vx92", "--ip", held.addrs[0].String(), "--runtime", "crun",
		"--cgroups=disabled", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "busybox", "sleep", "1000")
	want := fmt.Sprintf("address %s is in use on the segment: %s answered for it", held.addrs[0], mac)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("podman run --ip %s, held by Docker's %s: %v %s, want an error with %q", held.addrs[0], held.name, err, out, want)
	}

	for i := range per {
		p.MustPodman("rm", "-f", "-t", "0", fmt.Sprintf("p%d", i))
		d.MustDocker("rm", "-f", fmt.Sprintf("d%d", i))
	}
	_, _ = p.Podman("rm", "-f", "-t", "0", "pwant")
	if left := p.ReadCNIState(IPAMPluginType + "/vx92"); len(left) != 1 || left[0] != "lock" {
		t.Errorf("vxlan-ipam leases left after podman rm: %v", left)
	}
	d.RemoveNetwork("net92")
}

// parseAddrs reads the addresses an inspect printed.
func parseAddrs(t *testing.T, name, out string, err error) []netip.Addr {
	if err != nil {
		t.Errorf("inspect %s: %v", name, err)
		return nil
	}
	var addrs []netip.Addr
	for _, f := range strings.Fields(out) {
		a, err := netip.ParseAddr(f)
		if err != nil {
			t.Errorf("inspect %s: %q", name, out)
			return nil
		}
		addrs = append(addrs, a)
	}
	return addrs
}
