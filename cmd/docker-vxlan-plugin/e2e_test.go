package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/reapgroup"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// buildPlugin builds this command as a static binary for the test.
func buildPlugin(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "docker-vxlan-plugin")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

// twoDockerHosts starts two Docker engines joined by a veth underlay
// (198.18.10.1-2/24, fd00:10::1-2/64), each with the plugin running with
// -vtepdev set to its underlay device.
func twoDockerHosts(t *testing.T) (a, b *dockerhost.Host, ula, ulb string, bin string) {
	t.Helper()
	dockerhost.Require(t)
	bin = buildPlugin(t)
	nsA, nsB := testns.New(t), testns.New(t)
	ula, ulb = testns.Underlay(t, nsA, nsB,
		netip.MustParsePrefix("198.18.10.1/24"), netip.MustParsePrefix("198.18.10.2/24"),
		netip.MustParsePrefix("fd00:10::1/64"), netip.MustParsePrefix("fd00:10::2/64"))
	a, b = dockerhost.Start(t, nsA), dockerhost.Start(t, nsB)
	for _, h := range []struct {
		host *dockerhost.Host
		dev  string
	}{{a, ula}, {b, ulb}} {
		h.host.StartPlugin(bin, "-d", "-vtepdev", h.dev, "-state-dir", h.host.StateDir())
		h.host.ImportBusybox("bb")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log, host A:\n%s\nplugin log, host B:\n%s", a.PluginLog(), b.PluginLog())
		}
	})
	return a, b, ula, ulb, bin
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// oneDockerHost starts one Docker engine with the plugin; its underlay
// device is a veth to a second namespace (198.18.11.1/24).
func oneDockerHost(t *testing.T) (*dockerhost.Host, string) {
	t.Helper()
	dockerhost.Require(t)
	bin := buildPlugin(t)
	ns, peer := testns.New(t), testns.New(t)
	ul, _ := testns.Underlay(t, ns, peer, netip.MustParsePrefix("198.18.11.1/24"), netip.MustParsePrefix("198.18.11.2/24"))
	h := dockerhost.Start(t, ns)
	h.StartPlugin(bin, "-d", "-vtepdev", ul, "-state-dir", h.StateDir())
	h.ImportBusybox("bb")
	return h, ul
}

// ownedLinks lists the links in the host's namespace that this plugin
// makes (vx_*, br_* and container veths vh*/vc*), once its background
// deletion of released links is done: it waits up to 5 s for the plugin's
// deletion groups to be empty.
func ownedLinks(t *testing.T, h *dockerhost.Host) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var links []struct {
			Group string `json:"group"`
		}
		if err := json.Unmarshal([]byte(h.NS.IP("-j", "link", "show")), &links); err != nil {
			t.Fatal(err)
		}
		deleting := 0
		for _, l := range links {
			if g, err := strconv.ParseUint(l.Group, 10, 32); err == nil && reapgroup.Contains(uint32(g)) {
				deleting++
			}
		}
		if deleting == 0 || time.Now().After(deadline) {
			return listOwnedLinks(t, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func listOwnedLinks(t *testing.T, h *dockerhost.Host) []string {
	t.Helper()
	var links []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(h.NS.IP("-j", "link", "show")), &links); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		for _, p := range []string{"vx_", "br_", "vh", "vc"} {
			if strings.HasPrefix(l.Name, p) {
				out = append(out, l.Name)
			}
		}
	}
	return out
}

func TestIntegrationDockerTwoHosts(t *testing.T) {
	a, b, ula, _, _ := twoDockerHosts(t)

	// The same network on both hosts (local scope), each flooding to the
	// other by unicast: no multicast in the underlay.
	create := func(h *dockerhost.Host, peer string) string {
		return h.MustDocker("network", "create", "-d", "vxlan", "--ipv6",
			"--subnet", "198.19.10.0/24", "--gateway", "198.19.10.1",
			"--subnet", "fd00:a10::/64", "--gateway", "fd00:a10::1",
			"-o", "VxlanId=10", "-o", "Peers="+peer, "-o", "TTL=32", "-o", "vxlanTxQLen=600", "net10")
	}
	idA := create(a, "198.18.10.2")
	create(b, "198.18.10.1")
	a.MustDocker("run", "-d", "--name", "c1", "--net", "net10", "--ip", "198.19.10.11", "--ip6", "fd00:a10::11", "bb", "sleep", "3600")
	b.MustDocker("run", "-d", "--name", "c2", "--net", "net10", "--ip", "198.19.10.12", "--ip6", "fd00:a10::12", "bb", "sleep", "3600")

	t.Run("ContainerToContainerAcrossHosts", func(t *testing.T) {
		if out, err := a.Docker("exec", "c1", "ping", "-c", "3", "-W", "2", "198.19.10.12"); err != nil {
			t.Fatalf("IPv4: %v\n%s", err, out)
		}
		if out, err := a.Docker("exec", "c1", "ping6", "-c", "3", "-W", "2", "fd00:a10::12"); err != nil {
			t.Fatalf("IPv6: %v\n%s", err, out)
		}
	})
	t.Run("HostToLocalContainerThroughGateway", func(t *testing.T) {
		if err := a.NS.Ping(netip.MustParseAddr("198.19.10.11"), 2); err != nil {
			t.Fatal(err)
		}
		if err := a.NS.Ping(netip.MustParseAddr("fd00:a10::11"), 2); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ContainerRoutesAndMTU", func(t *testing.T) {
		if mtu := a.MustDocker("exec", "c1", "cat", "/sys/class/net/eth0/mtu"); mtu != "1450" {
			t.Fatalf("container MTU %s, want 1450 (1500-byte underlay less 50)", mtu)
		}
		if r := a.MustDocker("exec", "c1", "ip", "route"); !strings.Contains(r, "default via 198.19.10.1") {
			t.Fatalf("IPv4 routes: %s", r)
		}
		if r := a.MustDocker("exec", "c1", "ip", "-6", "route"); !strings.Contains(r, "default via fd00:a10::1") {
			t.Fatalf("IPv6 routes: %s", r)
		}
	})
	t.Run("LinksShowTheOptions", func(t *testing.T) {
		vxName, brName := "vx_"+idA[:12], "br_"+idA[:12]
		vx := a.NS.LinkJSON(vxName)
		d := vx.Linkinfo.InfoData
		if d["id"] != float64(10) || d["link"] != ula || d["ttl"] != float64(32) || d["port"] != float64(4789) ||
			d["learning"] != true || vx.Txqlen != 600 || vx.Master != brName || vx.MTU != 1450 {
			t.Fatalf("vxlan: %+v", vx)
		}
		fdb, err := a.NS.Exec("bridge", "fdb", "show", "dev", vxName)
		if err != nil || !strings.Contains(fdb, "00:00:00:00:00:00 dst 198.18.10.2") {
			t.Fatalf("peer entry: %v %s", err, fdb)
		}
	})
	t.Run("BadOptionIsNamedAndLeavesNothing", func(t *testing.T) {
		before := ownedLinks(t, a)
		_, err := a.Docker("network", "create", "-d", "vxlan", "-o", "VxlanId=11", "-o", "TTL=300", "bad")
		if err == nil || !strings.Contains(err.Error(), "remote: vxlan: option TTL=300: out of range; accepted: 0..255") {
			t.Fatalf("error: %v", err)
		}
		if _, err := a.Docker("network", "inspect", "bad"); err == nil {
			t.Fatal("the bad network exists")
		}
		if after := ownedLinks(t, a); strings.Join(after, ",") != strings.Join(before, ",") {
			t.Fatalf("links before %v, after %v", before, after)
		}
	})

	// Removing the containers and the network leaves no link behind.
	for _, h := range []*dockerhost.Host{a, b} {
		h.MustDocker("rm", "-f", "c1", "c2")
	}
	for _, h := range []*dockerhost.Host{a, b} {
		h.RemoveNetwork("net10")
		if left := ownedLinks(t, h); len(left) != 0 {
			t.Fatalf("left after network rm: %v", left)
		}
	}

	// The socket is root's alone.
	if out, err := exec.Command("nsenter", "-t", fmt.Sprint(a.DockerdPid()), "-m", "stat", "-c", "%a %u %g", "/run/docker/plugins/vxlan.sock").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "660 0 0" {
		t.Fatalf("socket mode and owner: %q %v, want 660 0 0", out, err)
	}

	// SIGTERM: the plugin stops listening and removes its socket.
	if err := a.StopPlugin(syscall.SIGTERM); err != nil {
		t.Fatalf("plugin exit after SIGTERM: %v\n%s", err, a.PluginLog())
	}
	if a.PluginSocketExists() {
		t.Fatal("socket left after SIGTERM")
	}
}
