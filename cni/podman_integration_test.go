package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/podmanhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// podmanConflist is the network vx70 as docs/cni.md gives it for Podman,
// with this host's VTEP device, its peer and its share of the subnet.
func podmanConflist(t *testing.T, vtep, peer, first, last string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "vx70",
		"plugins": []any{map[string]any{
			"type": "vxlan", "VxlanId": 70, "VtepDev": vtep, "Peers": []string{peer},
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{
				"subnet": "198.19.70.0/24", "rangeStart": first, "rangeEnd": last, "gateway": "198.19.70.1",
			}}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIntegrationPodman(t *testing.T) {
	podmanhost.Require(t)
	dir := pluginDir(t)
	nsA, nsB := testns.New(t), testns.New(t)
	ulA, ulB := testns.Underlay(t, nsA, nsB, netip.MustParsePrefix("198.18.70.1/24"), netip.MustParsePrefix("198.18.70.2/24"))
	hosts := []*podmanhost.Host{podmanhost.Start(t, nsA, dir), podmanhost.Start(t, nsB, dir)}
	hosts[0].AddNetwork("vx70", podmanConflist(t, ulA, "198.18.70.2", "198.19.70.10", "198.19.70.19"))
	hosts[1].AddNetwork("vx70", podmanConflist(t, ulB, "198.18.70.1", "198.19.70.20", "198.19.70.29"))

	var addrs []string
	for i, h := range hosts {
		h.ImportBusybox("busybox")
		name := fmt.Sprintf("c%d", i)
		h.Run(name, "vx70", "busybox", "sleep", "1000")
		addrs = append(addrs, h.MustPodman("inspect", "-f", "{{.NetworkSettings.Networks.vx70.IPAddress}}", name))
		if l := h.NS.IP("-o", "link", "show", "type", "vxlan"); !strings.Contains(l, "vx_") {
			t.Errorf("host %d: no vxlan link after podman run: %s", i, l)
		}
	}
	t.Logf("container addresses: %v", addrs)
	for i, h := range hosts {
		other := addrs[1-i]
		if out, err := h.Podman("exec", fmt.Sprintf("c%d", i), "ping", "-c", "3", "-W", "2", other); err != nil {
			t.Errorf("host %d: container cannot ping %s across hosts: %v\n%s", i, other, err, out)
		}
	}
	for i, h := range hosts {
		h.MustPodman("rm", "-f", "-t", "0", fmt.Sprintf("c%d", i))
		out := h.NS.IP("-o", "link", "show")
		for _, prefix := range []string{"vx_", "br_", "vh"} {
			if strings.Contains(out, prefix) {
				t.Errorf("host %d: links left after podman rm:\n%s", i, out)
				break
			}
		}
		if left := h.ReadCNIState("vxlan"); len(left) > 0 {
			t.Errorf("host %d: CNI plugin state left after podman rm: %v", i, left)
		}
	}
}

// A Docker network of the Docker plugin and a Podman (CNI) network with
// the same VNI on one host share the segment: the Podman container's veth
// is a port of the Docker network's bridge, the two containers ping each
// other, and removing the Podman container leaves the Docker network as it
// was.
func TestIntegrationPodmanJoinsDockerNetwork(t *testing.T) {
	dockerhost.Require(t)
	podmanhost.Require(t)
	bin := buildDockerPlugin(t)
	ns, peer := testns.New(t), testns.New(t)
	ul, _ := testns.Underlay(t, ns, peer, netip.MustParsePrefix("198.18.71.1/24"), netip.MustParsePrefix("198.18.71.2/24"))

	d := dockerhost.Start(t, ns)
	d.StartPlugin(bin, "-vtepdev", ul, "-state-dir", d.StateDir())
	d.ImportBusybox("bb")
	netID := d.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.71.0/24", "--gateway", "198.19.71.1",
		"-o", "VxlanId=71", "-o", "VtepDev="+ul, "-o", "Peers=198.18.71.2", "net71")
	d.MustDocker("run", "-d", "--name", "cd", "--net", "net71", "--ip", "198.19.71.11", "bb", "sleep", "3600")
	dockerVX, dockerBR := "vx_"+netID[:12], "br_"+netID[:12]

	p := podmanhost.Start(t, ns, pluginDir(t))
	p.AddNetwork("vx71", podmanConflist71(t, ul))
	p.ImportBusybox("busybox")
	p.Run("cp", "vx71", "busybox", "sleep", "1000")
	podAddr := p.MustPodman("inspect", "-f", "{{.NetworkSettings.Networks.vx71.IPAddress}}", "cp")

	var ports []string
	for _, l := range strings.Split(ns.IP("-o", "link", "show", "master", dockerBR), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			ports = append(ports, strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"))
		}
	}
	if len(ports) != 3 { // the vxlan link, Docker's container, Podman's container
		t.Errorf("ports of the Docker network's bridge %s: %v, want its vxlan link and two veths", dockerBR, ports)
	}
	if out := ns.IP("-o", "link", "show", "type", "vxlan"); strings.Count(out, "vx_") != 1 {
		t.Errorf("vxlan links on the host, want the Docker network's only:\n%s", out)
	}
	if out, err := p.Podman("exec", "cp", "ping", "-c", "3", "-W", "2", "198.19.71.11"); err != nil {
		t.Errorf("Podman container -> Docker container: %v\n%s", err, out)
	}
	if out, err := d.Docker("exec", "cd", "ping", "-c", "3", "-W", "2", podAddr); err != nil {
		t.Errorf("Docker container -> Podman container (%s): %v\n%s", podAddr, err, out)
	}

	p.MustPodman("rm", "-f", "-t", "0", "cp")
	if vx := ns.LinkJSON(dockerVX); vx.Master != dockerBR {
		t.Errorf("the Docker network's vxlan link after the Podman container went: %+v", vx)
	}
	if out, err := d.Docker("exec", "cd", "ping", "-c", "1", "-W", "2", "198.19.71.1"); err != nil {
		t.Errorf("the Docker container lost its network: %v\n%s", err, out)
	}
	if left := p.ReadCNIState("vxlan"); len(left) > 0 {
		t.Errorf("CNI plugin state left after podman rm: %v", left)
	}
	// The Docker side goes while its plugin runs (a dockerd whose plugin is
	// gone retries it for long).
	d.MustDocker("rm", "-f", "cd")
	d.RemoveNetwork("net71")
}

// podmanConflist71 is the Podman network vx71: the VNI, VTEP device and
// peer of the Docker network net71, with addresses of its own in its subnet.
func podmanConflist71(t *testing.T, vtep string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "vx71",
		"plugins": []any{map[string]any{
			"type": "vxlan", "VxlanId": 71, "VtepDev": vtep, "Peers": []string{"198.18.71.2"},
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{
				"subnet": "198.19.71.0/24", "rangeStart": "198.19.71.100", "rangeEnd": "198.19.71.150", "gateway": "198.19.71.1",
			}}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildDockerPlugin builds the Docker plugin into a temporary directory and
// returns its path.
func buildDockerPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "docker-vxlan-plugin")
	build := exec.Command("go", "build", "-o", bin, "../cmd/docker-vxlan-plugin")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}
