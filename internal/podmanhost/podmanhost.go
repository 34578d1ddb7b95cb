// Package podmanhost runs rootful Podman (its CNI network backend) as test
// hosts: each in a network namespace of package testns, with a mount
// namespace of its own in which cgroup2 is mounted and /var/lib/cni (the
// CNI state: IPAM allocations, the plugins' state, libcni's cache) is a
// private tmpfs, so that hosts on one machine do not share state.
//
// Podman has no daemon: a holder process keeps the namespaces, and every
// podman command runs in them through nsenter. Storage (vfs), run
// directories and configuration are under a temporary directory. Cleanup
// removes the containers, then ends by pid every process left in the
// host's mount namespace (conmon, the containers) and the holder.
package podmanhost

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// CNIDir is where Debian's containernetworking-plugins installs CNI's
// reference plugins.
const CNIDir = "/usr/lib/cni"

// busybox is the static busybox the image is made of (Debian's
// busybox-static).
const busybox = "/bin/busybox"

// Require skips (or fails under strict skips) unless root and the tools
// exist: podman, crun, nsenter, a static busybox and CNI's plugins.
func Require(t testing.TB) {
	t.Helper()
	testns.RequireRoot(t)
	for _, bin := range []string{"podman", "crun", "nsenter", "tar"} {
		if _, err := exec.LookPath(bin); err != nil {
			testns.Skip(t, "needs "+bin+" (apt-get install podman crun containernetworking-plugins busybox-static)")
		}
	}
	for _, f := range []string{busybox, filepath.Join(CNIDir, "host-local")} {
		if _, err := os.Stat(f); err != nil {
			testns.Skip(t, "needs "+f+" (apt-get install podman crun containernetworking-plugins busybox-static)")
		}
	}
}

// Host is one Podman host in its own namespaces.
type Host struct {
	// NS is the host's network namespace.
	NS     *testns.NS
	dir    string
	holder *exec.Cmd
	pid    int // the holder's pid: its namespaces are the host's
	t      testing.TB
	// madeCNIDir is set when this host made /var/lib/cni (its mount
	// point), which cleanup then removes.
	madeCNIDir bool
}

// cniStateDir is the CNI state directory, a private tmpfs on each host.
const cniStateDir = "/var/lib/cni"

// Start makes a Podman host in ns whose CNI plugins are looked up in
// pluginDirs, then CNIDir; its CNI network configurations are the files
// given to AddNetwork.
func Start(t testing.TB, ns *testns.NS, pluginDirs ...string) *Host {
	t.Helper()
	dir, err := os.MkdirTemp("", "dvp-podman-")
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{NS: ns, dir: dir, t: t}
	t.Cleanup(h.stop)
	for _, d := range []string{"net.d", "tmp", "root", "runroot"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	dirs := make([]string, 0, len(pluginDirs)+1)
	for _, d := range append(pluginDirs, CNIDir) {
		dirs = append(dirs, strconv.Quote(d))
	}
	conf := fmt.Sprintf(`[containers]
log_driver = "k8s-file"
cgroups = "disabled"

[network]
network_backend = "cni"
cni_plugin_dirs = [%s]
network_config_dir = %q

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %q
runtime = "crun"
tmp_dir = %q
`, strings.Join(dirs, ", "), filepath.Join(dir, "net.d"), filepath.Join(dir, "events.log"), filepath.Join(dir, "tmp"))
	if err := os.WriteFile(filepath.Join(dir, "containers.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cniStateDir); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(cniStateDir, 0o755); err != nil {
			t.Fatal(err)
		}
		h.madeCNIDir = true
	}
	// The holder: mounts of its own (ip netns exec gives it a mount
	// namespace), then it sleeps until killed.
	pidFile := filepath.Join(dir, "holder.pid")
	script := fmt.Sprintf(`mount -t cgroup2 none /sys/fs/cgroup && mount -t tmpfs tmpfs %s && echo $$ > %s && exec sleep 1000000`, cniStateDir, pidFile)
	h.holder = exec.Command("ip", "netns", "exec", ns.Name, "sh", "-c", script)
	var out bytes.Buffer
	h.holder.Stdout, h.holder.Stderr = &out, &out
	if err := h.holder.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.pid == 0 {
		b, err := os.ReadFile(pidFile)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			h.pid = pid
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("podman host holder in %s did not start: %s", ns.Name, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return h
}

// Podman runs podman in the host's namespaces with its configuration and
// storage.
func (h *Host) Podman(args ...string) (string, error) {
	base := []string{"-t", strconv.Itoa(h.pid), "-m", "-n", "podman",
		"--root", filepath.Join(h.dir, "root"), "--runroot", filepath.Join(h.dir, "runroot"),
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--runtime", "crun"}
	cmd := exec.Command("nsenter", append(base, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(h.dir, "containers.conf"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// MustPodman runs podman and fails the test on error.
func (h *Host) MustPodman(args ...string) string {
	h.t.Helper()
	out, err := h.Podman(args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// Run starts a detached container of image on network with the options
// Podman needs here (crun, no cgroups, fixed ulimits), running cmd, and
// returns its ID.
func (h *Host) Run(name, network, image string, cmd ...string) string {
	h.t.Helper()
	args := []string{"run", "-d", "--name", name, "--network", network, "--runtime", "crun", "--cgroups=disabled",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", image}
	return h.MustPodman(append(args, cmd...)...)
}

// AddNetwork writes a CNI network configuration list for Podman.
func (h *Host) AddNetwork(name string, conflist []byte) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, "net.d", name+".conflist"), conflist, 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// ReadCNIState returns the names under the host's private /var/lib/cni
// directory dir (for example "vxlan"), or nil when it does not exist.
func (h *Host) ReadCNIState(dir string) []string {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/root%s/%s", h.pid, cniStateDir, dir))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// ImportBusybox makes an image called name from the static busybox (see
// dockerhost.WriteBusyboxRoot).
func (h *Host) ImportBusybox(name string) {
	h.t.Helper()
	root := filepath.Join(h.dir, "image")
	if err := dockerhost.WriteBusyboxRoot(root); err != nil {
		h.t.Fatal(err)
	}
	tarball := filepath.Join(h.dir, "image.tar")
	if out, err := exec.Command("tar", "-C", root, "-cf", tarball, ".").CombinedOutput(); err != nil {
		h.t.Fatalf("tar: %v: %s", err, out)
	}
	h.MustPodman("import", tarball, name)
}

// processesInHost returns the pids of the processes in the host's mount
// namespace other than the holder (conmon, containers' init processes
// share it until they make their own, podman commands).
func (h *Host) processesInHost() []int {
	mine, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", h.pid))
	if err != nil {
		return nil
	}
	procs, _ := os.ReadDir("/proc")
	var out []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == h.pid {
			continue
		}
		if ns, err := os.Readlink("/proc/" + p.Name() + "/ns/mnt"); err == nil && ns == mine {
			out = append(out, pid)
		}
	}
	return out
}

// stop removes the containers, ends every process left in the host's
// mount namespace and the holder, and removes the host's files.
func (h *Host) stop() {
	if h.pid != 0 {
		if _, err := h.Podman("rm", "-f", "-a", "-t", "0"); err != nil {
			h.t.Logf("podman rm: %v", err)
		}
		for _, pid := range h.processesInHost() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if h.holder != nil && h.holder.Process != nil {
		_ = h.holder.Process.Kill()
		_ = h.holder.Wait()
	}
	if err := os.RemoveAll(h.dir); err != nil {
		h.t.Logf("removing %s: %v", h.dir, err)
	}
	if h.madeCNIDir {
		_ = os.Remove(cniStateDir) // only if empty: not if someone else uses it now
	}
}
