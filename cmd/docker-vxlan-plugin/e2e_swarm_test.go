package main

import (
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
)

// pluginName is the managed plugin's name in the swarm tests.
const pluginName = "dvp:test"

// The managed plugin, built from this checkout with the repository's
// script, installs on one engine with docker plugin create / set / enable,
// reports what its settings say, and keeps its state on the host mount
// across disable / enable.
func TestIntegrationManagedPluginInstall(t *testing.T) {
	dockerhost.Require(t)
	dir := dockerhost.BuildManagedPlugin(t, "../..")
	fab := dockerhost.NewFabric(t)
	ns, _ := fab.Add()
	h := dockerhost.Start(t, ns)
	h.InstallPlugin(pluginName, dir, "VTEPDEV="+dockerhost.Underlay, "DEBUG=true", "SCOPE=local")
	if out := h.MustDocker("plugin", "inspect", pluginName, "--format", "{{.Enabled}} {{.Config.Interface.Socket}} {{.Config.Linux.Capabilities}} {{.Config.Network.Type}}"); out != "true vxlan.sock [CAP_NET_ADMIN] host" {
		t.Fatalf("plugin: %s", out)
	}
	h.ImportBusybox("bb")
	h.MustDocker("network", "create", "-d", pluginName, "--subnet", "198.19.30.0/24", "--gateway", "198.19.30.1", "-o", "VxlanId=30", "n30")
	h.MustDocker("run", "-d", "--name", "c1", "--net", "n30", "--ip", "198.19.30.11", "bb", "sleep", "600")
	if err := h.NS.Ping(mustAddr("198.19.30.11"), 2); err != nil {
		t.Fatalf("host to container through the gateway: %v\n%s", err, h.DockerdLog())
	}
	h.MustDocker("plugin", "disable", "-f", pluginName)
	h.MustDocker("plugin", "enable", pluginName)
	if !strings.Contains(h.DockerdLog(), "state restored") || !strings.Contains(h.DockerdLog(), "networks=1") {
		t.Fatalf("state not restored from the host mount:\n%s", h.DockerdLog())
	}
	h.MustDocker("rm", "-f", "c1")
	h.MustDocker("network", "rm", "n30")
	if left := ownedLinks(t, h); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}
