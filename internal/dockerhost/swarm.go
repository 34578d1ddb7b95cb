package dockerhost

import (
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

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// Fabric is an underlay of many hosts: a hub namespace with a bridge, and
// per host a namespace with a veth "ul0" into that bridge, addressed
// 198.18.20.N/24 in the order the hosts were added (N from 1).
type Fabric struct {
	t   testing.TB
	hub *testns.NS
	n   int
}

// NewFabric makes the hub.
func NewFabric(t testing.TB) *Fabric {
	t.Helper()
	hub := testns.New(t)
	hub.IP("link", "add", "hub0", "type", "bridge")
	hub.IP("link", "set", "hub0", "up")
	return &Fabric{t: t, hub: hub}
}

// Underlay is the name of every host's underlay device on a Fabric.
const Underlay = "ul0"

// Add makes the next host's namespace, cabled to the hub, and returns it
// with its address.
func (f *Fabric) Add() (*testns.NS, netip.Addr) {
	f.t.Helper()
	f.n++
	ns := testns.New(f.t)
	port := fmt.Sprintf("hp%d", f.n)
	f.hub.IP("link", "add", port, "type", "veth", "peer", "name", Underlay, "netns", ns.Name)
	f.hub.IP("link", "set", port, "master", "hub0", "up")
	addr := netip.AddrFrom4([4]byte{198, 18, 20, byte(f.n)})
	ns.IP("addr", "add", addr.String()+"/24", "dev", Underlay)
	ns.IP("link", "set", Underlay, "up")
	ns.IP("link", "set", "lo", "up")
	return ns, addr
}

// DockerdLog returns what dockerd printed; a managed plugin's output is
// part of it.
func (h *Host) DockerdLog() string { return h.readFile("dockerd.log") }

// SwarmInit makes the host the first manager of a new swarm, advertising
// addr, and returns the join tokens of workers and managers.
func (h *Host) SwarmInit(addr netip.Addr) (worker, manager string) {
	h.t.Helper()
	h.MustDocker("swarm", "init", "--advertise-addr", addr.String(), "--listen-addr", addr.String()+":2377")
	return h.MustDocker("swarm", "join-token", "-q", "worker"), h.MustDocker("swarm", "join-token", "-q", "manager")
}

// SwarmJoin joins the host to the swarm of the manager at managerAddr with
// token, advertising addr.
func (h *Host) SwarmJoin(token string, managerAddr, addr netip.Addr) {
	h.t.Helper()
	h.MustDocker("swarm", "join", "--token", token, "--advertise-addr", addr.String(), "--listen-addr", addr.String()+":2377", managerAddr.String()+":2377")
}

// NodeID returns the host's swarm node ID.
func (h *Host) NodeID() string {
	h.t.Helper()
	return h.MustDocker("info", "--format", "{{.Swarm.NodeID}}")
}

// BuildManagedPlugin builds the managed plugin's directory (config.json and
// rootfs/) with the repository's scripts/build-managed-plugin.sh, from the
// checkout at repo, into a temporary directory, and returns it.
func BuildManagedPlugin(t testing.TB, repo string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "plugin")
	cmd := exec.Command(filepath.Join(repo, "scripts", "build-managed-plugin.sh"), "-n", "-d", dir, "unused")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build-managed-plugin.sh: %v\n%s", err, out)
	}
	return dir
}

// InstallPlugin creates the managed plugin name from dir (docker plugin
// create), points its state mount at the host's StateDir, applies
// settings (KEY=VALUE, as docker plugin set takes them) and enables it.
// Cleanup disables it while dockerd runs.
func (h *Host) InstallPlugin(name, dir string, settings ...string) {
	h.t.Helper()
	if err := os.MkdirAll(h.StateDir(), 0o700); err != nil {
		h.t.Fatal(err)
	}
	h.MustDocker("plugin", "create", name, dir)
	h.MustDocker(append([]string{"plugin", "set", name, "state.source=" + h.StateDir()}, settings...)...)
	h.MustDocker("plugin", "enable", name)
	h.t.Cleanup(func() {
		h.mu.Lock()
		running := h.dockerd != nil
		h.mu.Unlock()
		if running {
			_, _ = h.Docker("plugin", "disable", "-f", name)
		}
	})
}

// KillDockerd kills dockerd with SIGKILL, as a crash would, and waits for
// it; its containers and plugins go on running until StartAgain or
// cleanup.
func (h *Host) KillDockerd() {
	h.t.Helper()
	h.kill()
	h.t.Cleanup(h.killShimChildren)
}

// kill kills dockerd, if running, and waits for it.
func (h *Host) kill() {
	h.mu.Lock()
	cmd := h.dockerd
	h.dockerd = nil
	h.mu.Unlock()
	if cmd == nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(h.readFile("dockerd.pid"))); err == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = cmd.Wait()
}

// FastCleanup makes the host's cleanup kill dockerd and the processes of
// its containers and plugins rather than stop them one by one: a swarm
// engine takes long to stop gracefully. Call it right after Start.
func (h *Host) FastCleanup() {
	h.t.Cleanup(func() {
		h.kill()
		h.killShimChildren()
	})
}

// killShimChildren kills, by pid, the processes of the host's containers
// and managed plugins (see ShimChildren), which outlive a dockerd that was
// killed.
func (h *Host) killShimChildren() {
	for _, pid := range h.ShimChildren() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	time.Sleep(100 * time.Millisecond)
}

// ShimChildren returns the pids of the first process of each of the
// host's containers and managed plugins: the processes whose parent is one
// of the engine's own (dockerd, containerd and the shims, which all live in
// the host's cgroup) and which live outside that cgroup.
func (h *Host) ShimChildren() []int {
	engine := h.cgroupPids()
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || engine[pid] {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		// pid (comm) state ppid ...: comm may hold spaces, so after ')'.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
				if ppid, _ := strconv.Atoi(f[1]); engine[ppid] {
					out = append(out, pid)
				}
			}
		}
	}
	return out
}

// cgroupPids returns the pids of the processes in the host's cgroup.
func (h *Host) cgroupPids() map[int]bool {
	b, _ := os.ReadFile(filepath.Join(h.cgroup, "cgroup.procs"))
	pids := map[int]bool{}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids[pid] = true
		}
	}
	return pids
}

// killEngineProcesses ends every process of the host's cgroup (containerd
// and the shims of a killed dockerd) and waits until none is left; the
// cgroup stays for the engine's next start.
func (h *Host) killEngineProcesses() {
	if err := os.WriteFile(filepath.Join(h.cgroup, "cgroup.kill"), []byte("1"), 0); err != nil {
		h.t.Logf("killing the processes of %s: %v", h.cgroup, err)
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(h.cgroupPids()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// LeaderHost returns the index in hosts of the host that is the swarm's
// leader, as the others see it, waiting up to a minute for one.
func LeaderHost(t testing.TB, hosts []*Host) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for i, h := range hosts {
			if h == nil {
				continue
			}
			if out, err := h.Docker("node", "inspect", "self", "--format", "{{.ManagerStatus.Leader}}"); err == nil && out == "true" {
				return i
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no swarm leader within a minute")
		}
		time.Sleep(time.Second)
	}
}

// StartAgain starts dockerd on the same data after KillDockerd, as after
// a crash of the whole engine, and enables again the managed plugins that
// were enabled. Before the start the killed engine's containers, plugins,
// shims and containerd are ended (by pid), and the plugins are marked
// disabled in dockerd's plugin store: dockerd 20.10.24 started after a
// crash with a managed network plugin enabled panics in libnetwork's remote
// driver Init (measured; a graceful restart does not), because containerd
// still holds the plugin's container ("id already in use"), which is
// deleted (ctr) before the plugin is enabled again.
func (h *Host) StartAgain() {
	h.t.Helper()
	h.killShimChildren()
	h.killEngineProcesses()
	// A killed containerd may stay a zombie, which its pid file would
	// make dockerd take for a running one.
	_ = os.Remove(filepath.Join(h.dir, "exec", "containerd", "containerd.pid"))
	configs, _ := filepath.Glob(filepath.Join(h.dir, "data", "plugins", "*", "config.json"))
	var enabled []string
	for _, c := range configs {
		b, err := os.ReadFile(c)
		if err != nil {
			h.t.Fatal(err)
		}
		if !strings.Contains(string(b), `"Enabled":true`) {
			continue
		}
		enabled = append(enabled, filepath.Base(filepath.Dir(c)))
		if err := os.WriteFile(c, []byte(strings.Replace(string(b), `"Enabled":true`, `"Enabled":false`, 1)), 0o600); err != nil {
			h.t.Fatal(err)
		}
	}
	h.startDockerd()
	sock := filepath.Join(h.dir, "exec", "containerd", "containerd.sock")
	for _, id := range enabled {
		_, _ = testns.Run("ctr", "--address", sock, "-n", "plugins.moby", "task", "delete", "-f", id)
		_, _ = testns.Run("ctr", "--address", sock, "-n", "plugins.moby", "containers", "rm", id)
		h.MustDocker("plugin", "enable", id)
	}
}
