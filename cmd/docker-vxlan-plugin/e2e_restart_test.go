package main

import (
	"strings"
	"syscall"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
)

// Restart and recovery: kill -9 the plugin while containers run; they keep
// pinging. Restart it: a new container joins the existing network, a new
// network can be made. Restart dockerd, with the containers stopped and
// started again: the network still works. Then every network deletes
// cleanly.
func TestIntegrationDockerRestart(t *testing.T) {
	a, b, ula, _, bin := twoDockerHosts(t)
	startPlugin := func() { a.StartPlugin(bin, "-d", "-vtepdev", ula, "-state-dir", a.StateDir()) }
	for _, h := range []struct {
		host *dockerhost.Host
		peer string
	}{{a, "198.18.10.2"}, {b, "198.18.10.1"}} {
		h.host.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.30.0/24", "--gateway", "198.19.30.1",
			"-o", "VxlanId=30", "-o", "Peers="+h.peer, "net30")
	}
	a.MustDocker("run", "-d", "--name", "r1", "--net", "net30", "--ip", "198.19.30.11", "bb", "sleep", "3600")
	b.MustDocker("run", "-d", "--name", "r2", "--net", "net30", "--ip", "198.19.30.12", "bb", "sleep", "3600")
	ping := func(step, from string, h *dockerhost.Host, dst string) {
		t.Helper()
		if out, err := h.Docker("exec", from, "ping", "-c", "2", "-W", "2", dst); err != nil {
			t.Fatalf("%s: %s -> %s: %v\n%s\nplugin log:\n%s", step, from, dst, err, out, a.PluginLog())
		}
	}
	ping("before", "r1", a, "198.19.30.12")

	// kill -9: the containers' network does not depend on the plugin.
	_ = a.StopPlugin(syscall.SIGKILL)
	ping("plugin killed", "r1", a, "198.19.30.12")

	// Restarted: it knows net30 from its state.
	startPlugin()
	if !strings.Contains(a.PluginLog(), `msg="network restored"`) {
		t.Fatalf("plugin log after restart:\n%s", a.PluginLog())
	}
	a.MustDocker("run", "-d", "--name", "r3", "--net", "net30", "--ip", "198.19.30.13", "bb", "sleep", "3600")
	ping("plugin restarted", "r3", a, "198.19.30.12")
	a.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.31.0/24", "-o", "VxlanId=31", "net31")
	a.RemoveNetwork("net31")

	// dockerd restarted, containers stopped and started again.
	a.MustDocker("stop", "-t", "1", "r1", "r3")
	a.RestartDockerd()
	startPlugin()
	a.MustDocker("start", "r1", "r3")
	ping("dockerd restarted", "r1", a, "198.19.30.12")
	ping("dockerd restarted", "r3", a, "198.19.30.11")
	if err := a.NS.Ping(mustAddr("198.19.30.11"), 2); err != nil {
		t.Fatalf("host to its container after the restarts: %v", err)
	}

	for _, h := range []*dockerhost.Host{a, b} {
		h.MustDocker("rm", "-f", "r1", "r2", "r3")
		h.RemoveNetwork("net30")
		if left := ownedLinks(t, h); len(left) != 0 {
			t.Fatalf("left: %v", left)
		}
	}
}
