package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
)

// mode=macvlan: a vxlan link and no bridge; containers on two hosts, each
// a macvlan link on its host's vxlan link, reach each other.
func TestIntegrationDockerMacvlanOnVXLAN(t *testing.T) {
	a, b, _, _, _ := twoDockerHosts(t)
	for _, h := range []struct {
		host *dockerhost.Host
		peer string
		ip   string
	}{{a, "198.18.10.2", "21"}, {b, "198.18.10.1", "22"}} {
		h.host.MustDocker("network", "create", "-d", "vxlan", "--ipv6",
			"--subnet", "198.19.20.0/24", "--gateway", "198.19.20.1", "--subnet", "fd00:a20::/64", "--gateway", "fd00:a20::1",
			"-o", "VxlanId=20", "-o", "mode=macvlan", "-o", "Peers="+h.peer, "mv20")
		h.host.MustDocker("run", "-d", "--name", "m"+h.ip, "--net", "mv20", "--ip", "198.19.20."+h.ip, "--ip6", "fd00:a20::"+h.ip, "bb", "sleep", "3600")
	}
	if out, err := a.Docker("exec", "m21", "ping", "-c", "3", "-W", "2", "198.19.20.22"); err != nil {
		t.Fatalf("IPv4: %v\n%s", err, out)
	}
	if out, err := a.Docker("exec", "m21", "ping6", "-c", "3", "-W", "2", "fd00:a20::22"); err != nil {
		t.Fatalf("IPv6: %v\n%s", err, out)
	}
	if mtu := a.MustDocker("exec", "m21", "cat", "/sys/class/net/eth0/mtu"); mtu != "1450" {
		t.Fatalf("container MTU %s, want 1450", mtu)
	}
	if r := a.MustDocker("exec", "m21", "ip", "route"); !strings.Contains(r, "default via 198.19.20.1") {
		t.Fatalf("routes: %s", r)
	}
	links := strings.Join(ownedLinks(t, a), " ")
	if !strings.Contains(links, "vx_") || strings.Contains(links, "br_") {
		t.Fatalf("links on host A: %s", links)
	}
	if addrs := a.NS.IP("-j", "addr"); strings.Contains(addrs, "198.19.20.1") {
		t.Fatal("the gateway is on the host")
	}
	for i, h := range []*dockerhost.Host{a, b} {
		h.MustDocker("rm", "-f", fmt.Sprintf("m2%d", i+1))
		h.RemoveNetwork("mv20")
		if left := ownedLinks(t, h); len(left) != 0 {
			t.Fatalf("left: %v", left)
		}
	}
}

// Parent networks on the underlay: a parent list whose first existing name
// differs per host, and a parent-file with different contents on each host
// at the same path. Containers on the two hosts reach each other and the
// other host's underlay address; a list with no existing name is refused
// naming every candidate.
func TestIntegrationDockerParentNetworks(t *testing.T) {
	a, b, ula, ulb, bin := twoDockerHosts(t)

	// The same parent-file path, its own content on each host: bind-mounted
	// over a placeholder in each dockerd's mount namespace, in the directory
	// the plugins read parent-files from.
	dir := t.TempDir()
	for _, h := range []struct {
		host *dockerhost.Host
		dev  string
	}{{a, ula}, {b, ulb}} {
		_ = h.host.StopPlugin(syscall.SIGTERM)
		h.host.StartPlugin(bin, "-d", "-vtepdev", h.dev, "-state-dir", h.host.StateDir(), "-parent-dir", dir)
	}
	path := filepath.Join(dir, "parent.toml")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct {
		host    *dockerhost.Host
		content string
	}{{a, `[macvlan]` + "\nparent = \"" + ula + "\"\n"}, {b, "[macvlan]\nparent = [\"bond0\", \"" + ulb + "\"]\n"}} {
		own := filepath.Join(dir, h.host.NS.Name+".toml")
		if err := os.WriteFile(own, []byte(h.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("nsenter", "-t", fmt.Sprint(h.host.DockerdPid()), "-m", "mount", "--bind", own, path).CombinedOutput(); err != nil {
			t.Fatalf("bind mount: %v: %s", err, out)
		}
	}

	for _, n := range []struct {
		name, opt string
	}{{"plist", "parent=toothbrush, " + ula + ", " + ulb}, {"pfile", "parent-file=" + path}} {
		t.Run(n.name, func(t *testing.T) {
			for _, h := range []*dockerhost.Host{a, b} {
				h.MustDocker("network", "create", "-d", "vxlan", "--ipv6",
					"--subnet", "198.18.10.0/24", "--gateway", "198.18.10.1", "--subnet", "fd00:10::/64", "--gateway", "fd00:10::1",
					"-o", n.opt, n.name)
			}
			a.MustDocker("run", "-d", "--name", "pa", "--net", n.name, "--ip", "198.18.10.31", "--ip6", "fd00:10::31", "bb", "sleep", "3600")
			b.MustDocker("run", "-d", "--name", "pb", "--net", n.name, "--ip", "198.18.10.32", "--ip6", "fd00:10::32", "bb", "sleep", "3600")
			for _, dst := range []string{"198.18.10.32", "198.18.10.2"} {
				if out, err := a.Docker("exec", "pa", "ping", "-c", "2", "-W", "2", dst); err != nil {
					t.Fatalf("ping %s: %v\n%s", dst, err, out)
				}
			}
			if out, err := a.Docker("exec", "pa", "ping6", "-c", "2", "-W", "2", "fd00:10::32"); err != nil {
				t.Fatalf("IPv6: %v\n%s", err, out)
			}
			// Each container's macvlan sits on its own host's underlay
			// device: eth0@ifN names the lower link's index on the host.
			for _, h := range []struct {
				host *dockerhost.Host
				c    string
				dev  string
			}{{a, "pa", ula}, {b, "pb", ulb}} {
				want := fmt.Sprintf("eth0@if%d:", h.host.NS.LinkJSON(h.dev).Ifindex)
				if out := h.host.MustDocker("exec", h.c, "ip", "link", "show", "eth0"); !strings.Contains(out, want) {
					t.Fatalf("%s: %s, want the lower link %s (%s)", h.c, out, h.dev, want)
				}
			}
			for _, h := range []*dockerhost.Host{a, b} {
				h.MustDocker("rm", "-f", "pa", "pb")
				h.RemoveNetwork(n.name)
				if left := ownedLinks(t, h); len(left) != 0 {
					t.Fatalf("left: %v", left)
				}
			}
			if _, err := a.NS.TryIP("link", "show", ula); err != nil {
				t.Fatal("the underlay device was removed")
			}
		})
	}

	_, err := a.Docker("network", "create", "-d", "vxlan", "-o", "parent=toothbrush,pancakes", "nope")
	if err == nil || !strings.Contains(err.Error(), "remote: vxlan: option parent=toothbrush,pancakes: none of toothbrush, pancakes exists on this host") {
		t.Fatalf("missing parent: %v", err)
	}
}
