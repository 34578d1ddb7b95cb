// Package dockerhost runs real Docker engines as test hosts: each dockerd
// in a network namespace of package testns, with mounts of its own (its
// /run/docker/plugins is a private tmpfs), and a network plugin started in
// the same network and mount namespaces so dockerd finds its socket.
//
// Everything a host starts is stopped in t.Cleanup, whether the test passed
// or failed: the plugin, dockerd, containerd and the containers' shims.
package dockerhost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// Require skips (or fails under strict skips) unless root and the tools
// exist: dockerd, a docker client, nsenter and a static busybox.
func Require(t testing.TB) {
	t.Helper()
	testns.RequireRoot(t)
	for _, bin := range []string{"dockerd", "docker", "nsenter", "containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			testns.Skip(t, "needs "+bin+" (apt-get install docker.io busybox-static)")
		}
	}
	if _, err := os.Stat(busybox); err != nil {
		testns.Skip(t, "needs "+busybox+" (apt-get install busybox-static)")
	}
}

const busybox = "/bin/busybox"

// Host is one Docker engine in its own namespace.
type Host struct {
	NS     *testns.NS
	dir    string
	sock   string
	cgroup string // the cgroup dockerd and its children run in
	t      testing.TB

	mu         sync.Mutex
	dockerd    *exec.Cmd
	plugin     *exec.Cmd
	pluginArgs []string       // the binary and arguments StartPlugin last ran
	pluginDone chan error     // the plugin's exit, once
	log        *testns.Output // the plugin's output
}

// Start starts dockerd in ns and waits until it answers.
func Start(t testing.TB, ns *testns.NS) *Host {
	t.Helper()
	dir, err := os.MkdirTemp("", "dvp-docker-")
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{NS: ns, dir: dir, sock: filepath.Join(dir, "docker.sock"), t: t}
	t.Cleanup(h.stop)
	if h.cgroup, err = newCgroup(filepath.Base(dir)); err != nil {
		t.Fatal(err)
	}
	h.startDockerd()
	return h
}

// cgroup2Root returns where the cgroup2 hierarchy is mounted: /sys/fs/cgroup
// on a pure cgroup2 host, /sys/fs/cgroup/unified beside cgroup v1.
func cgroup2Root() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if f, g := strings.Fields(pre), strings.Fields(post); ok && len(f) > 4 && len(g) > 0 && g[0] == "cgroup2" {
			return f[4], nil
		}
	}
	return "", fmt.Errorf("no cgroup2 hierarchy is mounted")
}

// newCgroup makes a cgroup of the host's own, named name, directly under
// the cgroup2 root. dockerd and everything it starts outside containers
// (containerd, the shims) live in it, so that stop ends exactly those
// processes, through cgroup.kill, and nothing else.
func newCgroup(name string) (string, error) {
	root, err := cgroup2Root()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// killCgroup ends every process in the host's cgroup and removes it.
func (h *Host) killCgroup() {
	if h.cgroup == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(h.cgroup, "cgroup.kill"), []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		h.t.Logf("killing the processes of %s: %v", h.cgroup, err)
	}
	// The cgroup can be removed once its last process is gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := os.Remove(h.cgroup)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Logf("removing %s: %v", h.cgroup, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// EnvDockerdArgs names an environment variable of the tests: arguments
// added to every dockerd the package starts, separated by spaces; -D, for
// example, has dockerd log each step of a container's start with its time.
const EnvDockerdArgs = "DVP_DOCKERD_ARGS"

// extraArgs returns the arguments of EnvDockerdArgs, each quoted for sh.
func extraArgs() string {
	var out []string
	for _, a := range strings.Fields(os.Getenv(EnvDockerdArgs)) {
		out = append(out, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	return strings.Join(out, " ")
}

// startDockerd starts dockerd, with mounts of its own, and waits for it.
func (h *Host) startDockerd() {
	h.t.Helper()
	// The shell enters the host's cgroup (its path under the cgroup2 root,
	// which it mounts at /sys/fs/cgroup) before it becomes dockerd.
	script := fmt.Sprintf(
		`mount -t cgroup2 none /sys/fs/cgroup && echo $$ > /sys/fs/cgroup/%[2]s/cgroup.procs && `+
			`mkdir -p /run/docker/plugins && mount -t tmpfs tmpfs /run/docker/plugins && `+
			`exec dockerd --data-root %[1]s/data --exec-root %[1]s/exec -H unix://%[1]s/docker.sock --pidfile %[1]s/dockerd.pid `+
			`--bridge=none --iptables=false --ip-masq=false %[3]s >>%[1]s/dockerd.log 2>&1`,
		h.dir,
		filepath.Base(h.cgroup),
		extraArgs(),
	)
	cmd := exec.Command("ip", "netns", "exec", h.NS.Name, "sh", "-c", script)
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	h.dockerd = cmd
	h.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := h.Docker("version", "--format", "{{.Server.Version}}"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("dockerd in %s did not start:\n%s", h.NS.Name, h.readFile("dockerd.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// RestartDockerd stops the plugin and dockerd, then starts dockerd again
// on the same data; the caller starts the plugin again, as it must be in
// the new dockerd's mount namespace.
func (h *Host) RestartDockerd() {
	h.t.Helper()
	_ = h.StopPlugin(syscall.SIGTERM)
	h.stopDockerd()
	h.startDockerd()
}

// stopDockerd stops dockerd gracefully, or kills it after 20 seconds.
func (h *Host) stopDockerd() {
	h.mu.Lock()
	cmd := h.dockerd
	h.dockerd = nil
	h.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	pid := strings.TrimSpace(h.readFile("dockerd.pid"))
	_ = exec.Command("kill", "-TERM", pid).Run()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = exec.Command("kill", "-KILL", pid).Run()
		<-done
	}
}

func (h *Host) readFile(name string) string {
	b, _ := os.ReadFile(filepath.Join(h.dir, name))
	return string(b)
}

// StateDir is a directory of the host's own for the plugin's state.
func (h *Host) StateDir() string { return filepath.Join(h.dir, "plugin-state") }

// DockerdPid returns the pid of the host's dockerd.
func (h *Host) DockerdPid() int {
	pid, err := strconv.Atoi(strings.TrimSpace(h.readFile("dockerd.pid")))
	if err != nil {
		h.t.Fatalf("dockerd pid: %v", err)
	}
	return pid
}

// Docker runs the docker client against this host.
func (h *Host) Docker(args ...string) (string, error) {
	out, err := testns.Run("docker", append([]string{"-H", "unix://" + h.sock}, args...)...)
	return strings.TrimSpace(out), err
}

// MustDocker runs the docker client and fails the test on error.
func (h *Host) MustDocker(args ...string) string {
	h.t.Helper()
	out, err := h.Docker(args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// RemoveNetwork runs `docker network rm name` until it succeeds; any
// error but "has active endpoints" fails the test at once. dockerd
// releases a removed container's endpoint when it handles the container's
// exit and counts it as gone once the driver's DeleteEndpoint has
// answered, so `docker rm -f` can return before the network is
// removable: that answer is retried for 10 s.
//
// dockerd 20.10 can also keep a network's endpoint bookkeeping (its
// endpoint count, or the endpoint of a removed container) after several
// containers on it are removed at once, while it lists none: the answer
// then stays for good (moby/moby#42119; the count was dropped in v28.1).
// Its start repairs both ("Removing stale endpoint", "Fixing inconsistent
// endpoint_cnt"). So when the answer outlasts 10 s while dockerd lists no
// container on the network, dockerd is restarted once, with the plugin as
// StartPlugin last started it, and the removal must then succeed within
// 10 s.
func (h *Host) RemoveNetwork(name string) {
	h.t.Helper()
	restarted := false
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := h.Docker("network", "rm", name)
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "has active endpoints") {
			h.t.Fatal(err)
		}
		if time.Now().After(deadline) {
			listed, _ := h.Docker("network", "inspect", "-f", "{{len .Containers}}", name)
			if restarted || listed != "0" {
				inspect, _ := h.Docker("network", "inspect", name)
				h.t.Fatalf("docker network rm %s: %v\ndocker network inspect %s:\n%s", name, err, name, inspect)
			}
			h.t.Logf(
				"docker network rm %s: dockerd lists no container on it but still counts endpoints; restarting it, which repairs its count",
				name,
			)
			h.mu.Lock()
			args := h.pluginArgs
			h.mu.Unlock()
			h.RestartDockerd()
			if args != nil {
				h.StartPlugin(args[0], args[1:]...)
			}
			restarted, deadline = true, time.Now().Add(10*time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StartPlugin starts the plugin binary with args inside dockerd's network
// and mount namespaces and waits until it answers Plugin.Activate on its
// socket (a socket file left by a killed plugin does not count).
func (h *Host) StartPlugin(binary string, args ...string) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = &testns.Output{}
	pid := strconv.Itoa(h.DockerdPid())
	cmd := exec.Command("nsenter", append([]string{"-t", pid, "-m", "-n", binary}, args...)...)
	cmd.Stdout, cmd.Stderr = h.log, h.log
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.plugin, h.pluginArgs = cmd, append([]string{binary}, args...)
	done := make(chan error, 1)
	h.pluginDone = done
	go func() { done <- cmd.Wait() }()
	// The socket as dockerd sees it, through its mount namespace.
	sock := "/proc/" + pid + "/root/run/docker/plugins/vxlan.sock"
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Post("http://plugin/Plugin.Activate", "", nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			done <- err
			h.t.Fatalf("plugin exited (%v); output:\n%s", err, h.log)
		default:
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("plugin did not answer on its socket; output:\n%s", h.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StopPlugin sends sig to the plugin and waits for it to exit.
func (h *Host) StopPlugin(sig syscall.Signal) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.plugin == nil {
		return nil
	}
	_ = h.plugin.Process.Signal(sig)
	err := <-h.pluginDone
	h.plugin = nil
	return err
}

// PluginLog returns what the plugin printed.
func (h *Host) PluginLog() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.log == nil {
		return ""
	}
	return h.log.String()
}

// PluginSocketExists reports whether the plugin's socket is in dockerd's
// plugin directory.
func (h *Host) PluginSocketExists() bool {
	return exec.Command("nsenter", "-t", strconv.Itoa(h.DockerdPid()), "-m", "test", "-e", "/run/docker/plugins/vxlan.sock").Run() == nil
}

// WriteBusyboxRoot writes an image root into the directory root: the
// static busybox as bin/busybox and its applets as symlinks to it.
func WriteBusyboxRoot(root string) error {
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		return err
	}
	for _, applet := range []string{"sh", "ping", "ping6", "ip", "sleep", "cat", "ifconfig", "true"} {
		_ = os.Symlink("busybox", filepath.Join(root, "bin", applet))
	}
	return nil
}

// ImportBusybox makes an image called name from the static busybox (see
// WriteBusyboxRoot).
func (h *Host) ImportBusybox(name string) {
	h.t.Helper()
	root := filepath.Join(h.dir, "image")
	if err := WriteBusyboxRoot(root); err != nil {
		h.t.Fatal(err)
	}
	tar := exec.Command("tar", "-C", root, "-c", ".")
	imp := exec.Command("docker", "-H", "unix://"+h.sock, "import", "-", name)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		h.t.Fatal(err)
	}
	if out, err := imp.CombinedOutput(); err != nil {
		h.t.Fatalf("docker import: %v: %s", err, out)
	}
	if err := tar.Wait(); err != nil {
		h.t.Fatal(err)
	}
}

// stop ends the plugin, dockerd and everything they started, then removes
// the host's files.
func (h *Host) stop() {
	_ = h.StopPlugin(syscall.SIGKILL)
	if out, err := h.Docker("ps", "-aq"); err == nil && out != "" {
		_, _ = h.Docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
	}
	h.stopDockerd()
	// containerd and the shims of containers: the rest of the cgroup.
	h.killCgroup()
	if h.t.Failed() {
		dockerd, plugin := h.readFile("dockerd.log"), h.PluginLog()
		h.t.Logf("dockerd's errors and warnings on %s, other than containerd's cleanup:\n%s", h.NS.Name, matchingLines(dockerd, func(l string) bool {
			return (strings.Contains(l, "level=error") || strings.Contains(l, "level=warning")) && !strings.Contains(l, "cleanup warnings")
		}))
		h.t.Logf("the plugin's errors and warnings on %s:\n%s", h.NS.Name, matchingLines(plugin, func(l string) bool {
			return strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") ||
				strings.Contains(l, "error=") && !strings.Contains(l, "error=<nil>")
		}))
		h.t.Logf("dockerd log of %s (end):\n%s", h.NS.Name, testns.Tail(dockerd, 60))
		h.t.Logf("plugin log of %s (end):\n%s", h.NS.Name, testns.Tail(plugin, 60))
	}
	if err := os.RemoveAll(h.dir); err != nil {
		h.t.Logf("removing %s: %v", h.dir, err)
	}
}

// matchingLines is the lines of log that keep accepts, at most the last
// 40 of them.
func matchingLines(log string, keep func(string) bool) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if keep(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out[max(0, len(out)-40):], "\n")
}
