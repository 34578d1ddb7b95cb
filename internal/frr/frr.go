// Package frr runs FRRouting as the BGP EVPN control plane of test hosts:
// zebra and bgpd started inside a network namespace of package testns,
// queried through vtysh, and stopped in t.Cleanup whether the test passed or
// failed.
//
// Each router lives in a directory of its own under the system's temporary
// directory: its frr.conf, the daemons' pid files, their vty sockets
// (--vty_socket), zebra's API socket (-z) and their logs (--log). No -N path
// space is used, so nothing is written under /etc/frr or /var/run/frr, and
// routers in different namespaces never meet. The only other place FRR
// writes is /var/tmp/frr/<daemon>.<pid>, a crash-log directory the daemon
// removes when it exits cleanly; Stop removes it when it had to kill.
//
// The daemons drop privileges to the frr user (they refuse to run as root
// unless root is in the frrvty group), so the directory belongs to frr.
package frr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// Where Debian's frr package installs the daemons.
const (
	Zebra = "/usr/lib/frr/zebra"
	BGPd  = "/usr/lib/frr/bgpd"
)

// daemons are started in this order and stopped in the reverse one: bgpd
// talks to the kernel through zebra.
var daemons = []string{Zebra, BGPd}

// Require skips (or fails under strict skips) unless the test runs as root
// and FRR is installed: zebra, bgpd, vtysh and the frr user.
func Require(t testing.TB) {
	t.Helper()
	testns.RequireRoot(t)
	for _, bin := range daemons {
		if _, err := os.Stat(bin); err != nil {
			testns.Skip(t, "needs FRRouting's "+bin+" (apt-get install frr)")
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		testns.Skip(t, "needs FRRouting's vtysh (apt-get install frr)")
	}
	if _, err := user.Lookup("frr"); err != nil {
		testns.Skip(t, "needs the frr user that the frr package creates (apt-get install frr)")
	}
}

// Router is zebra and bgpd running in one namespace.
type Router struct {
	// NS is the namespace the daemons run in.
	NS *testns.NS
	// Dir holds the configuration, pid files, sockets and logs.
	Dir string

	t    testing.TB
	mu   sync.Mutex
	pids map[string]int // daemon path → pid, while running
}

// Start writes config as the router's frr.conf and starts zebra, then
// bgpd, inside ns, each daemonised (-d) with its pid file in the router's
// directory. It returns once both answer on their vty sockets. The daemons
// are stopped, by the pids in their pid files, and the directory is removed
// when the test ends.
func Start(t testing.TB, ns *testns.NS, config string) *Router {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("", "dvp-frr-"+ns.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	r := &Router{NS: ns, Dir: dir, t: t, pids: map[string]int{}}
	t.Cleanup(func() {
		if t.Failed() {
			r.logState()
		}
		if err := r.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := r.prepare(config); err != nil {
		t.Fatal(err)
	}
	for _, d := range daemons {
		if err := r.start(d); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// prepare writes frr.conf and hands the directory to the frr user.
func (r *Router) prepare(config string) error {
	u, err := user.Lookup("frr")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	conf := filepath.Join(r.Dir, "frr.conf")
	if err := os.WriteFile(conf, []byte(config), 0o640); err != nil {
		return err
	}
	for _, p := range []string{r.Dir, conf} {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) path(daemon, suffix string) string {
	return filepath.Join(r.Dir, filepath.Base(daemon)+suffix)
}

// start runs one daemon and waits for its pid file and its vty socket.
func (r *Router) start(daemon string) error {
	args := []string{"netns", "exec", r.NS.Name, daemon, "-d",
		"-f", filepath.Join(r.Dir, "frr.conf"),
		"-i", r.path(daemon, ".pid"),
		"--vty_socket", r.Dir,
		"-z", filepath.Join(r.Dir, "zserv.api"),
		"--log", "file:" + r.path(daemon, ".log"),
	}
	// With -d the command returns once the daemon has forked and read its
	// configuration; the daemon itself is no child of this process.
	if _, err := testns.Run("ip", args...); err != nil {
		return fmt.Errorf("start %s in %s: %w", filepath.Base(daemon), r.NS.Name, err)
	}
	var pid int
	err := poll(10*time.Second, func() error {
		b, err := os.ReadFile(r.path(daemon, ".pid"))
		if err != nil {
			return err
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s in %s wrote no pid file: %w", filepath.Base(daemon), r.NS.Name, err)
	}
	r.mu.Lock()
	r.pids[daemon] = pid
	r.mu.Unlock()
	if err := poll(10*time.Second, func() error { _, err := os.Stat(r.path(daemon, ".vty")); return err }); err != nil {
		return fmt.Errorf("%s (pid %d) in %s opened no vty socket: %w\n%s", filepath.Base(daemon), pid, r.NS.Name, err, r.Log())
	}
	return nil
}

// Stop stops bgpd, then zebra: SIGTERM to the pid each wrote in its pid
// file, SIGKILL if it has not exited after 10 s. Zebra removes the routes
// and FDB entries it installed when it exits. Stopping twice is harmless.
func (r *Router) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, d := range slices.Backward(daemons) {
		pid, ok := r.pids[d]
		if !ok {
			continue
		}
		delete(r.pids, d)
		if err := stopPid(d, pid); err != nil {
			errs = append(errs, fmt.Errorf("stop %s (pid %d) in %s: %w", filepath.Base(d), pid, r.NS.Name, err))
		}
	}
	return errors.Join(errs...)
}

// stopPid ends the daemon process pid, if pid still is that daemon.
func stopPid(daemon string, pid int) error {
	if !isDaemon(pid, daemon) {
		return nil // already gone
	}
	killed := false
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		if poll(10*time.Second, func() error {
			if isDaemon(pid, daemon) {
				return errors.New("still running")
			}
			return nil
		}) == nil {
			break
		}
		killed = true
	}
	if isDaemon(pid, daemon) {
		return errors.New("still running after SIGKILL")
	}
	if killed {
		// A daemon that exits cleanly removes its crash-log directory.
		return os.RemoveAll(fmt.Sprintf("/var/tmp/frr/%s.%d", filepath.Base(daemon), pid))
	}
	return nil
}

// isDaemon reports whether pid is a live (not zombie) process running
// daemon, so a pid reused by another process is never signalled.
func isDaemon(pid int, daemon string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return string(argv0) == daemon
}

// Pids returns the pids of the running daemons by name ("zebra", "bgpd").
func (r *Router) Pids() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]int{}
	for d, pid := range r.pids {
		m[filepath.Base(d)] = pid
	}
	return m
}

// Vtysh runs `vtysh -c cmd` against this router's daemons and returns what
// it printed.
func (r *Router) Vtysh(cmd string) (string, error) {
	return testns.Run("vtysh", "--vty_socket", r.Dir, "-c", cmd)
}

// VtyshJSON runs a vtysh command that ends in "json" and decodes its output
// into v.
func (r *Router) VtyshJSON(cmd string, v any) error {
	out, err := r.Vtysh(cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("vtysh -c %q in %s: %w: %s", cmd, r.NS.Name, err, out)
	}
	return nil
}

// VNI is one entry of `show evpn vni json`.
type VNI struct {
	VNI         uint32       `json:"vni"`
	Type        string       `json:"type"` // "L2" or "L3"
	VxlanIf     string       `json:"vxlanIf"`
	NumMACs     int          `json:"numMacs"`
	NumArpNd    int          `json:"numArpNd"`
	RemoteVTEPs []netip.Addr `json:"remoteVteps"`
	TenantVRF   string       `json:"tenantVrf"`
}

// EVPNVNIs returns what zebra knows of each VNI (`show evpn vni json`),
// by VNI.
func (r *Router) EVPNVNIs() (map[uint32]VNI, error) {
	var byName map[string]VNI
	if err := r.VtyshJSON("show evpn vni json", &byName); err != nil {
		return nil, err
	}
	m := make(map[uint32]VNI, len(byName))
	for _, v := range byName {
		m[v.VNI] = v
	}
	return m, nil
}

// BGPPeer is one peer of `show bgp l2vpn evpn summary json`.
type BGPPeer struct {
	RemoteAS uint32 `json:"remoteAs"`
	State    string `json:"state"` // "Established" once peering works
	PfxRcd   int    `json:"pfxRcd"`
	PfxSnt   int    `json:"pfxSnt"`
}

// BGPSummary is `show bgp l2vpn evpn summary json`.
type BGPSummary struct {
	RouterID string             `json:"routerId"`
	AS       uint32             `json:"as"`
	Peers    map[string]BGPPeer `json:"peers"`
}

// EVPNSummary returns bgpd's l2vpn evpn peering summary.
func (r *Router) EVPNSummary() (BGPSummary, error) {
	var s BGPSummary
	err := r.VtyshJSON("show bgp l2vpn evpn summary json", &s)
	return s, err
}

// WaitVNI polls `show evpn vni` until vni lists exactly the remote VTEPs
// given (in any order), and returns how long that took; after timeout it
// fails with what zebra last reported.
func (r *Router) WaitVNI(vni uint32, remotes []netip.Addr, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	want := slices.SortedFunc(slices.Values(remotes), netip.Addr.Compare)
	var last VNI
	err := poll(timeout, func() error {
		vnis, err := r.EVPNVNIs()
		if err != nil {
			return err
		}
		last = vnis[vni]
		if slices.Equal(slices.SortedFunc(slices.Values(last.RemoteVTEPs), netip.Addr.Compare), want) && last.VNI == vni {
			return nil
		}
		return fmt.Errorf("VNI %d has remote VTEPs %v, want %v (entry %+v)", vni, last.RemoteVTEPs, want, last)
	})
	if err != nil {
		return 0, fmt.Errorf("%s after %v: %w", r.NS.Name, timeout, err)
	}
	return time.Since(start), nil
}

// Log returns the daemons' log files.
func (r *Router) Log() string {
	var b strings.Builder
	for _, d := range daemons {
		out, _ := os.ReadFile(r.path(d, ".log"))
		fmt.Fprintf(&b, "== %s log\n%s", filepath.Base(d), out)
	}
	return b.String()
}

// logState writes what the router knows into the test log, for failures.
func (r *Router) logState() {
	for _, cmd := range []string{"show evpn vni detail", "show bgp l2vpn evpn summary", "show bgp l2vpn evpn", "show evpn mac vni all"} {
		out, err := r.Vtysh(cmd)
		r.t.Logf("%s: vtysh -c %q: %v\n%s", r.NS.Name, cmd, err, out)
	}
	r.t.Logf("%s:\n%s", r.NS.Name, r.Log())
}

// poll calls fn every 100 ms until it returns nil or timeout has passed,
// and returns fn's last error.
func poll(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
