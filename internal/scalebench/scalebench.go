// Package scalebench measures the plugin with many networks on one host:
// it runs the real plugin binary in a network namespace of its own, with
// its state on disk, and calls it over its socket as dockerd does.
//
// For each number of networks it reports the per-container cost (the
// calls of one container start and stop: CreateEndpoint, Join, Leave,
// DeleteEndpoint), the mean CreateNetwork and DeleteNetwork, the time to
// tear every network down one DeleteNetwork at a time as dockerd does
// (until the kernel holds none of their links), the plugin's resident
// memory, and the time a restarted plugin takes until its socket answers.
package scalebench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config says what to measure.
type Config struct {
	// Plugin is the plugin binary.
	Plugin string
	// Networks is the number of networks made before measuring.
	Networks int
	// IPv6 leaves IPv6 on in the namespace (the default of a host);
	// false disables it there, to tell the kernel's IPv6 share apart.
	IPv6 bool
	// DualStack gives every network an IPv6 pool too (docker network
	// create --ipv6), so that every bridge holds an IPv6 gateway. The
	// kernel walks its whole IPv6 routing table on link changes, and each
	// such bridge adds routes to it, so the kernel's cost then grows with
	// the number of networks whatever the plugin does. Without it the
	// networks are IPv4, as `docker network create --subnet` makes them.
	DualStack bool
	// Containers is the number of container start and stop cycles timed.
	Containers int
	// Settle is how long to wait after making the networks, so that the
	// kernel's timers for the new links (IPv6 duplicate address detection,
	// router solicitations) are done before timing.
	Settle time.Duration
	// Log, if set, receives progress lines.
	Log io.Writer
}

// Result is what one run measured.
type Result struct {
	Networks        int
	IPv6            bool
	DualStack       bool
	ContainerP50    time.Duration // one container start and stop
	ContainerP99    time.Duration
	CreateNetwork   time.Duration // mean
	DeleteNetwork   time.Duration // mean of the calls
	Teardown        time.Duration // every network deleted, until no link is left
	RSS             int64         // bytes, with every network made
	RestartToAnswer time.Duration // start of a new plugin process until its socket answers
	LinksLeft       int           // links of the plugin left after the teardown

	// Container start and stop cycles run on the network deleted last
	// while the others are deleted, until their links are gone: what a
	// container start meets during a mass deletion. None with one network.
	TeardownContainerP50 time.Duration
	TeardownContainerMax time.Duration
	TeardownContainers   int // cycles timed
}

// Run makes a namespace, starts the plugin in it, measures, and removes
// everything it made, also on error.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if cfg.Containers == 0 {
		cfg.Containers = 200
	}
	b, err := newBench(cfg)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.close()) }()
	return b.run(ctx)
}

type bench struct {
	cfg    Config
	ns     string // namespace name
	dir    string // socket and state
	sock   string
	plugin *exec.Cmd
	client *http.Client
}

func newBench(cfg Config) (*bench, error) {
	dir, err := os.MkdirTemp("", "dvp-scale-")
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, ns: fmt.Sprintf("dvp-scale-%d", os.Getpid()), dir: dir, sock: filepath.Join(dir, "vxlan.sock")}
	b.client = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", b.sock)
		}},
	}
	if err := run("ip", "netns", "add", b.ns); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	steps := [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "ul0", "type", "veth", "peer", "name", "ul1"},
		{"addr", "add", "198.18.0.1/24", "dev", "ul0"},
		{"link", "set", "ul0", "up"},
		{"link", "set", "ul1", "up"},
	}
	for _, s := range steps {
		if err := run("ip", append([]string{"-n", b.ns}, s...)...); err != nil {
			return nil, errors.Join(err, b.close())
		}
	}
	if !cfg.IPv6 {
		for _, k := range []string{"all", "default"} {
			if err := run("ip", "netns", "exec", b.ns, "sysctl", "-qw", "net.ipv6.conf."+k+".disable_ipv6=1"); err != nil {
				return nil, errors.Join(err, b.close())
			}
		}
	}
	return b, nil
}

// close stops the plugin and deletes the namespace (and every link in it)
// and the directory.
func (b *bench) close() error {
	err := b.stopPlugin()
	err = errors.Join(err, run("ip", "netns", "del", b.ns))
	return errors.Join(err, os.RemoveAll(b.dir))
}

func (b *bench) logf(format string, args ...any) {
	if b.cfg.Log != nil {
		fmt.Fprintf(b.cfg.Log, format+"\n", args...)
	}
}

// startPlugin starts the plugin in the namespace and waits until its
// socket answers; it returns how long that took.
func (b *bench) startPlugin() (time.Duration, error) {
	start := time.Now()
	cmd := exec.Command("ip", "netns", "exec", b.ns, b.cfg.Plugin, "-vtepdev", "ul0", "-socket", b.sock, "-state-dir", filepath.Join(b.dir, "state"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	b.plugin = cmd
	for {
		if _, err := b.call("Plugin.Activate", ""); err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > 30*time.Second {
			return 0, fmt.Errorf("the plugin did not answer within 30 s:\n%s", out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// stopPlugin ends the plugin with SIGTERM, by its process group.
func (b *bench) stopPlugin() error {
	if b.plugin == nil {
		return nil
	}
	cmd := b.plugin
	b.plugin = nil
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return errors.New("the plugin did not stop on SIGTERM within 10 s")
	}
}

// call posts a call to the plugin; an answer with Err is an error.
func (b *bench) call(call, body string) (string, error) {
	resp, err := b.client.Post("http://plugin/"+call, "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"Err"`)) {
		return "", fmt.Errorf("%s: %s %s", call, resp.Status, out)
	}
	return string(out), nil
}

// ID returns the i-th dockerd-style ID of kind ("net", "ep"): 64 hex
// characters.
func ID(kind string, i int) string {
	sum := sha256.Sum256([]byte(kind + strconv.Itoa(i)))
	return hex.EncodeToString(sum[:])
}

// subnet4 and subnet6 are the i-th network's pools: a /24 of 198.18.0.0/15
// after the underlay's, and a /64 of fd00::/8.
func subnet4(i int) string { return fmt.Sprintf("198.%d.%d", 18+(i+1)/256, (i+1)%256) }
func subnet6(i int) string { return fmt.Sprintf("fd00:%x:%x", i/0x10000+1, i%0x10000) }

func (b *bench) createNetwork(i int) error {
	ipv6 := ""
	if b.cfg.DualStack {
		ipv6 = fmt.Sprintf(`,"IPv6Data":[{"AddressSpace":"LocalDefault","Pool":"%[1]s::/64","Gateway":"%[1]s::1/64"}]`, subnet6(i))
	}
	_, err := b.call(
		"NetworkDriver.CreateNetwork",
		fmt.Sprintf(
			`{"NetworkID":"%s","Options":{"com.docker.network.generic":{"VxlanId":"%d"},"com.docker.network.enable_ipv6":%v},`+
				`"IPv4Data":[{"AddressSpace":"LocalDefault","Pool":"%s.0/24","Gateway":"%[4]s.1/24"}]%s}`,
			ID("net", i),
			i+1,
			b.cfg.DualStack,
			subnet4(i),
			ipv6,
		),
	)
	return err
}

func (b *bench) container(netIdx, i int) (time.Duration, error) {
	net, ep := ID("net", netIdx), ID("ep", i)
	start := time.Now()
	for _, c := range []struct{ call, body string }{
		{"NetworkDriver.CreateEndpoint", fmt.Sprintf(`{"NetworkID":"%s","EndpointID":"%s","Interface":{"Address":"%s.%d/24"}}`, net, ep, subnet4(netIdx), 2+i%250)},
		{"NetworkDriver.Join", fmt.Sprintf(`{"NetworkID":"%s","EndpointID":"%s","SandboxKey":"/var/run/docker/netns/x"}`, net, ep)},
		{"NetworkDriver.Leave", fmt.Sprintf(`{"NetworkID":"%s","EndpointID":"%s"}`, net, ep)},
		{"NetworkDriver.DeleteEndpoint", fmt.Sprintf(`{"NetworkID":"%s","EndpointID":"%s"}`, net, ep)},
	} {
		if _, err := b.call(c.call, c.body); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func (b *bench) run(ctx context.Context) (*Result, error) {
	res := &Result{Networks: b.cfg.Networks, IPv6: b.cfg.IPv6, DualStack: b.cfg.DualStack}
	if _, err := b.startPlugin(); err != nil {
		return nil, err
	}
	start := time.Now()
	for i := 0; i < b.cfg.Networks; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.createNetwork(i); err != nil {
			return nil, err
		}
	}
	res.CreateNetwork = time.Since(start) / time.Duration(max(b.cfg.Networks, 1))
	b.logf("%d networks made, %v each", b.cfg.Networks, res.CreateNetwork)
	time.Sleep(b.cfg.Settle)

	var took []time.Duration
	for i := 0; i < b.cfg.Containers; i++ {
		d, err := b.container(i%b.cfg.Networks, i)
		if err != nil {
			return nil, err
		}
		took = append(took, d)
	}
	slices.Sort(took)
	res.ContainerP50, res.ContainerP99 = took[len(took)/2], took[len(took)*99/100]
	b.logf("containers: p50 %v p99 %v", res.ContainerP50, res.ContainerP99)

	rss, err := rssOf(b.pluginPid())
	if err != nil {
		return nil, err
	}
	res.RSS = rss
	if err := b.stopPlugin(); err != nil {
		return nil, err
	}
	if res.RestartToAnswer, err = b.startPlugin(); err != nil {
		return nil, err
	}
	b.logf("restart: socket answers after %v", res.RestartToAnswer)

	start = time.Now()
	last := b.cfg.Networks - 1
	during, err := b.whileDeleting(func() error {
		for i := 0; i < last; i++ {
			if _, err := b.call("NetworkDriver.DeleteNetwork", fmt.Sprintf(`{"NetworkID":"%s"}`, ID("net", i))); err != nil {
				return err
			}
		}
		res.DeleteNetwork = time.Since(start)
		// The cycles go on until the other networks' links are gone: the
		// last network's two are left.
		_, err := b.waitLinks(networkLinks, 2, start)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(during) > 0 {
		slices.Sort(during)
		res.TeardownContainerP50, res.TeardownContainerMax, res.TeardownContainers = during[len(during)/2], during[len(during)-1], len(during)
		b.logf("containers during the teardown: p50 %v, max %v, %d cycles", res.TeardownContainerP50, res.TeardownContainerMax, len(during))
	}
	t := time.Now()
	if _, err := b.call("NetworkDriver.DeleteNetwork", fmt.Sprintf(`{"NetworkID":"%s"}`, ID("net", last))); err != nil {
		return nil, err
	}
	res.DeleteNetwork = (res.DeleteNetwork + time.Since(t)) / time.Duration(max(b.cfg.Networks, 1))
	if res.LinksLeft, err = b.waitLinks(allLinks, 0, start); err != nil {
		return nil, err
	}
	res.Teardown = time.Since(start)
	b.logf("teardown: %v (DeleteNetwork %v each), %d links left", res.Teardown, res.DeleteNetwork, res.LinksLeft)
	return res, nil
}

// whileDeleting runs teardown while container start and stop cycles run
// one after another on the last network, and returns the cycles' times.
// With one network there is nothing else to delete and no cycle runs.
func (b *bench) whileDeleting(teardown func() error) ([]time.Duration, error) {
	if b.cfg.Networks < 2 {
		return nil, teardown()
	}
	stop := make(chan struct{})
	type outcome struct {
		took []time.Duration
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		for i := b.cfg.Containers; ; i++ {
			select {
			case <-stop:
				done <- o
				return
			default:
			}
			d, err := b.container(b.cfg.Networks-1, i)
			if err != nil {
				o.err = err
				done <- o
				return
			}
			o.took = append(o.took, d)
		}
	}()
	err := teardown()
	close(stop)
	o := <-done
	return o.took, errors.Join(err, o.err)
}

// waitLinks waits until at most want of the plugin's links named with
// prefixes are left, or 10 minutes from start have passed, and returns
// how many are left.
func (b *bench) waitLinks(prefixes []string, want int, start time.Time) (int, error) {
	for {
		left, err := b.pluginLinks(prefixes)
		if err != nil || left <= want || time.Since(start) > 10*time.Minute {
			return left, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pluginPid is the pid of the plugin process itself: ip netns exec
// replaces itself with it.
func (b *bench) pluginPid() int { return b.plugin.Process.Pid }

// rssOf reads a process's resident set size.
func rssOf(pid int) (int64, error) {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// Name prefixes of the links the plugin makes: a network's, and a
// container's.
var (
	networkLinks = []string{"vx_", "br_"}
	allLinks     = []string{"vx_", "br_", "vh", "vc"}
)

// pluginLinks counts the links of the namespace whose names start with one
// of prefixes.
func (b *bench) pluginLinks(prefixes []string) (int, error) {
	out, err := exec.Command("ip", "-n", b.ns, "-o", "link", "show").Output()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 {
			name := strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")
			if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
				n++
			}
		}
	}
	return n, nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
