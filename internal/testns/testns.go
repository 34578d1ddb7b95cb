// Package testns gives live tests throwaway network namespaces to act as
// hosts, veth underlays between them, and the rule for skipping.
//
// Every namespace has a unique name (dvp-<pid>-<n>) visible to iproute2
// (`ip -n NAME`), and is deleted in t.Cleanup, which also deletes every link
// inside it, whether the test passed or failed.
//
// Skips: a test that needs root, a tool or a kernel feature calls [Skip]
// with the reason. When the environment variable DVP_STRICT_SKIPS is set (as
// .ci/run sets it), a skip is a failure instead, unless the reason names a
// kernel feature listed in DVP_ALLOW_MISSING (comma-separated, for example
// "8021q,dummy,ipvlan"): what this machine truly lacks.
package testns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/netfault"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// Environment variables read by this package.
const (
	EnvStrict       = "DVP_STRICT_SKIPS"
	EnvAllowMissing = "DVP_ALLOW_MISSING"
)

// Skip skips the test with reason, or fails it when skips are strict.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(EnvStrict) != "" {
		t.Fatalf("would skip, but %s is set: %s", EnvStrict, reason)
	}
	t.Skip(reason)
}

// SkipMissingFeature skips because the kernel lacks feature (a short name
// such as "8021q"), failing under strict skips unless DVP_ALLOW_MISSING
// lists it.
func SkipMissingFeature(t testing.TB, feature string, err error) {
	t.Helper()
	reason := fmt.Sprintf("kernel lacks %s: %v", feature, err)
	for _, f := range strings.Split(os.Getenv(EnvAllowMissing), ",") {
		if strings.TrimSpace(f) == feature {
			t.Skip(reason)
		}
	}
	Skip(t, reason)
}

// RequireRoot skips unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		Skip(t, "needs iproute2's ip command")
	}
}

var counter atomic.Int64

// NS is a throwaway network namespace.
type NS struct {
	// Name is the namespace's name for `ip netns` (and rtlink.OpenNetNS).
	Name string
	t    testing.TB
}

// New creates a namespace, brings its loopback up, and deletes it when the
// test ends.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("dvp-%d-%d", os.Getpid(), counter.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	ns := &NS{Name: name, t: t}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns.IP("link", "set", "lo", "up")
	return ns
}

// Path is the namespace's bind mount.
func (ns *NS) Path() string { return "/run/netns/" + ns.Name }

// Dial returns an rtlink connection into the namespace, closed at cleanup.
func (ns *NS) Dial() *rtlink.Conn {
	ns.t.Helper()
	c, err := rtlink.Dial(rtlink.WithNetNSPath(ns.Path()))
	if err != nil {
		ns.t.Fatalf("dial %s: %v", ns.Name, err)
	}
	ns.t.Cleanup(func() { c.Close() })
	return c
}

// Open returns a handle on the namespace, closed at cleanup.
func (ns *NS) Open() *rtlink.NetNS {
	ns.t.Helper()
	h, err := rtlink.OpenNetNS(ns.Path())
	if err != nil {
		ns.t.Fatalf("open %s: %v", ns.Name, err)
	}
	ns.t.Cleanup(func() { h.Close() })
	return h
}

// IP runs `ip -n NAME args...` and returns its standard output; it fails
// the test if ip fails.
func (ns *NS) IP(args ...string) string {
	ns.t.Helper()
	out, err := ns.TryIP(args...)
	if err != nil {
		ns.t.Fatal(err)
	}
	return out
}

// TryIP runs `ip -n NAME args...`, returning its output and any error with
// ip's own message.
func (ns *NS) TryIP(args ...string) (string, error) {
	return Run("ip", append([]string{"-n", ns.Name}, args...)...)
}

// Exec runs a command inside the namespace (`ip netns exec`).
func (ns *NS) Exec(name string, args ...string) (string, error) {
	return Run("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Ping sends count pings from the namespace to dst and reports whether at
// least one answer came back within about two seconds per packet.
func (ns *NS) Ping(dst netip.Addr, count int) error {
	_, err := ns.Exec("ping", "-n", "-q", "-c", fmt.Sprint(count), "-W", "2", "-i", "0.2", dst.String())
	return err
}

// Run runs a command and returns its standard output; its error carries
// the command line and what the command wrote to standard error.
func Run(name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Do runs fn on a thread switched into the namespace (see rtlink.NetNS.Do).
func (ns *NS) Do(fn func() error) error {
	h, err := rtlink.OpenNetNS(ns.Path())
	if err != nil {
		return err
	}
	defer h.Close()
	return h.Do(fn)
}

// Underlay joins a and b with a veth pair (a's end "ul-<n>", b's end
// "ul-<n>p"), gives each end the addresses given (a's first, then b's: pass
// prefixes in pairs), brings both up and returns the two link names.
func Underlay(t testing.TB, a, b *NS, pairs ...netip.Prefix) (string, string) {
	t.Helper()
	if len(pairs)%2 != 0 {
		t.Fatal("Underlay: addresses come in pairs")
	}
	n := counter.Add(1)
	an, bn := fmt.Sprintf("ul-%d", n), fmt.Sprintf("ul-%dp", n)
	a.IP("link", "add", an, "type", "veth", "peer", "name", bn, "netns", b.Name)
	for i := 0; i < len(pairs); i += 2 {
		a.IP("addr", "add", pairs[i].String(), "dev", an, "nodad")
		b.IP("addr", "add", pairs[i+1].String(), "dev", bn, "nodad")
	}
	a.IP("link", "set", an, "up")
	b.IP("link", "set", bn, "up")
	return an, bn
}

// IPLink is the part of `ip -d -j link show` that tests compare against.
type IPLink struct {
	Ifindex  int      `json:"ifindex"`
	Ifname   string   `json:"ifname"`
	Flags    []string `json:"flags"`
	MTU      int      `json:"mtu"`
	Txqlen   int      `json:"txqlen"`
	Address  string   `json:"address"`
	Ifalias  string   `json:"ifalias"`
	Group    string   `json:"group"`
	Master   string   `json:"master"`
	Link     string   `json:"link"`
	Linkinfo struct {
		InfoKind string         `json:"info_kind"`
		InfoData map[string]any `json:"info_data"`
	} `json:"linkinfo"`
}

// LinkJSON returns what `ip -d -j link show NAME` reports for the link.
func (ns *NS) LinkJSON(name string) IPLink {
	ns.t.Helper()
	out := ns.IP("-d", "-j", "link", "show", "dev", name)
	var links []IPLink
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		ns.t.Fatalf("ip -d -j link show %s: %v: %s", name, err, out)
	}
	return links[0]
}

// Snapshot is what the namespace holds that a failed attempt could leave
// behind: its links, its addresses other than link-local ones, and its FDB
// entries (but the kernel's multicast ones), as sorted text to compare.
func (ns *NS) Snapshot() string {
	ns.t.Helper()
	var links []struct {
		Name  string `json:"ifname"`
		Addrs []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
			Scope     string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(ns.IP("-j", "addr")), &links); err != nil {
		ns.t.Fatal(err)
	}
	var lines []string
	for _, l := range links {
		lines = append(lines, "link "+l.Name)
		for _, a := range l.Addrs {
			if a.Scope != "link" {
				lines = append(lines, fmt.Sprintf("addr %s %s/%d", l.Name, a.Local, a.Prefixlen))
			}
		}
	}
	fdb, err := ns.Exec("bridge", "fdb", "show")
	if err != nil {
		ns.t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(fdb), "\n") {
		if l != "" && !strings.HasPrefix(l, "33:33:") && !strings.HasPrefix(l, "01:00:5e:") {
			lines = append(lines, "fdb "+l)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// DialFaulty returns an rtlink connection into the namespace, closed at
// cleanup, that calls intercept before each request it sends, as do its
// clones (see internal/netfault): a test fails the requests it chooses.
func (ns *NS) DialFaulty(intercept netfault.Interceptor) *rtlink.Conn {
	ns.t.Helper()
	remove, err := netfault.Inject(ns.Path(), intercept)
	if err != nil {
		ns.t.Fatal(err)
	}
	defer remove() // the connection keeps intercept; later ones do not
	return ns.Dial()
}

// WriteFile writes a file at path, making its directory, with exactly the
// mode given (whatever the umask), and returns path; it fails the test on
// any error.
func WriteFile(t testing.TB, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// Tail returns the last n lines of s, for logs in failure messages.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Output collects a process's output, written by exec's copying goroutines
// while a test reads it. Its zero value is ready to use.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Len is the number of bytes written so far.
func (o *Output) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Len()
}

// From returns what was written from byte off on.
func (o *Output) From(off int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.b.Bytes()[off:])
}

// Eventually calls check every interval until it returns nil, and returns
// how long that took; after limit it fails the test with what and check's
// last error.
func Eventually(t testing.TB, limit, interval time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v: %v", what, limit, err)
		}
		time.Sleep(interval)
	}
}

// Holds turns a condition that says what it saw into a check for
// Eventually: nil when it holds, else an error with what it saw.
func Holds(cond func() (bool, string)) func() error {
	return func() error {
		if ok, state := cond(); !ok {
			return errors.New(state)
		}
		return nil
	}
}
