// Package dockerhost runs real Docker engines as test hosts: each dockerd
// in a network namespace of package testns, with mounts of its own (its
// /run/docker/plugins is a private tmpfs), and a network plugin started in
// the same network and mount namespaces so dockerd finds its socket.
//
// Everything a host starts is stopped in t.Cleanup, whether the test passed
// or failed: the plugin, dockerd, containerd and the containers' shims.
package dockerhost

import (
	"bytes"
	"fmt"
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
	NS   *testns.NS
	dir  string
	sock string
	t    testing.TB

	mu     sync.Mutex
	plugin *exec.Cmd
	log    *bytes.Buffer // the plugin's output
}

// Start starts dockerd in ns and waits until it answers.
func Start(t testing.TB, ns *testns.NS) *Host {
	t.Helper()
	dir, err := os.MkdirTemp("", "dvp-docker-")
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{NS: ns, dir: dir, sock: filepath.Join(dir, "docker.sock"), t: t}
	script := fmt.Sprintf(`mount -t cgroup2 none /sys/fs/cgroup && mkdir -p /run/docker/plugins && mount -t tmpfs tmpfs /run/docker/plugins && exec dockerd --data-root %[1]s/data --exec-root %[1]s/exec -H unix://%[1]s/docker.sock --pidfile %[1]s/dockerd.pid --bridge=none --iptables=false --ip-masq=false >%[1]s/dockerd.log 2>&1`, dir)
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.stop(cmd) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := h.Docker("version", "--format", "{{.Server.Version}}"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd in %s did not start:\n%s", ns.Name, h.readFile("dockerd.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return h
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
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("docker", append([]string{"-H", "unix://" + h.sock}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
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

// StartPlugin starts the plugin binary with args inside dockerd's network
// and mount namespaces and waits for its socket.
func (h *Host) StartPlugin(binary string, args ...string) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = &bytes.Buffer{}
	pid := strconv.Itoa(h.DockerdPid())
	cmd := exec.Command("nsenter", append([]string{"-t", pid, "-m", "-n", binary}, args...)...)
	cmd.Stdout, cmd.Stderr = h.log, h.log
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.plugin = cmd
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("nsenter", "-t", pid, "-m", "test", "-S", "/run/docker/plugins/vxlan.sock").Run() != nil {
		if time.Now().After(deadline) {
			h.t.Fatalf("plugin socket did not appear; plugin output:\n%s", h.log)
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
	err := h.plugin.Wait()
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

// ImportBusybox makes an image called name from the static busybox: a root
// with bin/busybox and its applets as symlinks.
func (h *Host) ImportBusybox(name string) {
	h.t.Helper()
	root := filepath.Join(h.dir, "image")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		h.t.Fatal(err)
	}
	b, err := os.ReadFile(busybox)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		h.t.Fatal(err)
	}
	for _, applet := range []string{"sh", "ping", "ping6", "ip", "sleep", "cat", "ifconfig", "true"} {
		_ = os.Symlink("busybox", filepath.Join(root, "bin", applet))
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
func (h *Host) stop(dockerd *exec.Cmd) {
	_ = h.StopPlugin(syscall.SIGKILL)
	if out, err := h.Docker("ps", "-aq"); err == nil && out != "" {
		_, _ = h.Docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
	}
	if dockerd.Process != nil {
		_ = exec.Command("kill", "-TERM", strconv.Itoa(h.DockerdPid())).Run()
		done := make(chan struct{})
		go func() { _ = dockerd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = exec.Command("kill", "-KILL", strconv.Itoa(h.DockerdPid())).Run()
			<-done
		}
	}
	// containerd and the shims of containers name the host's directory.
	_ = exec.Command("pkill", "-KILL", "-f", h.dir).Run()
	time.Sleep(100 * time.Millisecond)
	if err := os.RemoveAll(h.dir); err != nil {
		h.t.Logf("removing %s: %v", h.dir, err)
	}
}
