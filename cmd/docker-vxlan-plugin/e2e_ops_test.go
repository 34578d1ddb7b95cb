package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/supervisor"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// opsHost is a Docker engine whose plugin runs under a supervisor that
// holds the plugin's socket in dockerd's mount namespace and passes it in,
// as systemd's docker-vxlan-plugin.socket does.
type opsHost struct {
	*dockerhost.Host
	sup  *supervisor.Supervisor
	sock string // the socket, seen through dockerd's mount namespace
	args []string
}

// argv is the plugin binary run in dockerd's network and mount
// namespaces; nsenter without -p execs it, so it keeps the pid the
// supervisor put in LISTEN_PID.
func (o *opsHost) argv(binary string, extra ...string) []string {
	return append([]string{"nsenter", "-t", strconv.Itoa(o.DockerdPid()), "-m", "-n", binary}, append(append([]string{}, o.args...), extra...)...)
}

// ready posts Plugin.Activate on the socket until answered (a connection
// waits in the socket's queue while no plugin runs) and returns how long
// that took.
func (o *opsHost) ready(t *testing.T) {
	t.Helper()
	if err := o.answers(); err != nil {
		t.Fatal(err)
	}
}

// answers is ready for any goroutine: it returns the error.
func (o *opsHost) answers() error {
	client := unixClient(o.sock, 20*time.Second)
	resp, err := client.Post("http://plugin/Plugin.Activate", "", nil)
	if err != nil {
		return fmt.Errorf("plugin did not answer on the supervisor's socket: %v\n%s", err, testns.Tail(o.sup.Log(), 40))
	}
	resp.Body.Close()
	return nil
}

func unixClient(sock string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

// status runs `docker-vxlan-plugin status` in dockerd's namespaces and
// returns its exit code and output.
func (o *opsHost) status(t *testing.T, binary string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(o.DockerdPid()), "-m", "-n", binary, "status", "-state-dir", o.StateDir()}, args...)...)
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out) + string(exit.Stderr)
	}
	t.Fatalf("status: %v", err)
	return 0, ""
}

func (o *opsHost) statusJSON(t *testing.T, binary string, args ...string) (int, *docker.StatusReport) {
	t.Helper()
	code, out := o.status(t, binary, append([]string{"-json"}, args...)...)
	var rep docker.StatusReport
	// The first JSON value: stderr, after it, may say no plugin answered.
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&rep); err != nil {
		t.Fatalf("status -json: exit %d, %v:\n%s", code, err, out)
	}
	return code, &rep
}

// startOpsHost starts the plugin of h under a supervisor.
func startOpsHost(t *testing.T, h *dockerhost.Host, binary string, args ...string) *opsHost {
	t.Helper()
	o := &opsHost{Host: h, sock: fmt.Sprintf("/proc/%d/root/run/docker/plugins/vxlan.sock", h.DockerdPid()), args: args}
	sup, err := supervisor.Listen(o.sock, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	o.sup = sup
	t.Cleanup(func() {
		if err := sup.Close(); err != nil {
			t.Logf("closing the supervisor: %v", err)
		}
		if t.Failed() {
			t.Logf("supervised plugin log (end):\n%s", testns.Tail(sup.Log(), 80))
		}
	})
	if err := sup.Start(o.argv(binary)...); err != nil {
		t.Fatal(err)
	}
	o.ready(t)
	return o
}

// disruption is one kill or upgrade of the plugin, from the signal to the
// first call the next process answered.
type disruption struct {
	what       string
	start, end time.Time
}

// TestIntegrationDockerSocketActivation: the plugin runs under a
// supervisor that holds its socket, as systemd's units make it run. While
// 100 containers are started and removed one after the other and a
// container pings another across hosts, the plugin is killed (SIGKILL) 5
// times and once replaced by a newly built binary (SIGTERM, then the new
// binary): no container start fails, no run waits longer than the restart
// itself and 100 ms more (dockerd's retry back-off is 1 s and more, so a
// refused call would show), no ping is lost, and the networks are still
// known. Then status on a clean host, after a link is deleted behind the
// plugin's back, and after the plugin re-created it.
func TestIntegrationDockerSocketActivation(t *testing.T) {
	dockerhost.Require(t)
	bin := buildPlugin(t)
	nsA, nsB := testns.New(t), testns.New(t)
	ula, ulb := testns.Underlay(t, nsA, nsB, netip.MustParsePrefix("198.18.14.1/24"), netip.MustParsePrefix("198.18.14.2/24"))
	a, b := dockerhost.Start(t, nsA), dockerhost.Start(t, nsB)
	b.StartPlugin(bin, "-d", "-vtepdev", ulb, "-state-dir", b.StateDir())
	a.ImportBusybox("bb")
	b.ImportBusybox("bb")
	o := startOpsHost(t, a, bin, "-d", "-log-json", "-vtepdev", ula, "-state-dir", a.StateDir())

	// -version names the module and the commit.
	if out, err := exec.Command(bin, "-version").CombinedOutput(); err != nil || !strings.Contains(string(out), "github.com/TrilliumIT/docker-vxlan-plugin") || !strings.Contains(string(out), "commit ") {
		t.Fatalf("-version: %v: %s", err, out)
	}

	var id string
	for _, h := range []struct {
		host *dockerhost.Host
		peer string
	}{{a, "198.18.14.2"}, {b, "198.18.14.1"}} {
		out := h.host.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.40.0/24", "--gateway", "198.19.40.1",
			"-o", "VxlanId=40", "-o", "Peers="+h.peer, "net40")
		if h.host == a {
			id = out
		}
	}
	b.MustDocker("run", "-d", "--name", "p2", "--net", "net40", "--ip", "198.19.40.12", "bb", "sleep", "3600")
	a.MustDocker("run", "-d", "--name", "p1", "--net", "net40", "--ip", "198.19.40.11", "bb", "ping", "-i", "0.2", "198.19.40.12")

	// A newly built binary for the upgrade: built again, to another file.
	bin2 := buildPlugin(t)

	const runs = 100
	plan := map[int]string{10: "kill", 25: "kill", 40: "kill", 55: "kill", 70: "kill", 85: "upgrade"}
	var (
		mu          sync.Mutex
		disruptions []disruption
		wg          sync.WaitGroup
	)
	durations := make([]time.Duration, runs)
	starts := make([]time.Time, runs)
	for i := range runs {
		if what, ok := plan[i]; ok {
			// Strike while this run's container is up: once its Join was
			// answered, its Leave and DeleteEndpoint come while the plugin
			// is down or restarting.
			joins := strings.Count(o.sup.CurrentLog(), `"call":"NetworkDriver.Join"`)
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := time.Now().Add(10 * time.Second)
				for strings.Count(o.sup.CurrentLog(), `"call":"NetworkDriver.Join"`) <= joins && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				// Past the answer to Join (written just after its log
				// line) and the ProgramExternalConnectivity and
				// EndpointOperInfo calls that follow it within a few ms;
				// before the container exits (100 ms and more later).
				time.Sleep(25 * time.Millisecond)
				d := disruption{what: what, start: time.Now()}
				var err error
				if what == "kill" {
					err = o.sup.Kill(syscall.SIGKILL)
				} else {
					err = o.sup.Restart(o.argv(bin2)...) // SIGTERM: a graceful stop, exit 0
				}
				if err != nil {
					t.Errorf("%s: %v", what, err)
				}
				if err := o.answers(); err != nil {
					t.Error(err)
				}
				d.end = time.Now()
				mu.Lock()
				disruptions = append(disruptions, d)
				mu.Unlock()
			}()
		}
		starts[i] = time.Now()
		out, err := a.Docker("run", "--rm", "--net", "net40", "bb", "true")
		durations[i] = time.Since(starts[i])
		if err != nil {
			t.Fatalf("run %d failed after %v: %v\n%s", i, durations[i], err, out)
		}
		wg.Wait() // one disruption at a time, each inside its run or the next
	}
	if n := o.sup.Starts(); n != 1+len(plan) {
		t.Fatalf("plugin started %d times, want %d", n, 1+len(plan))
	}

	// Each run a restart overlapped may take, on top of the calm runs
	// around it (the slowest of the two before and the two after: the
	// machine's load varies), the restart it waited for and 100 ms: a
	// refused call costs dockerd's retry back-off, 1 s and more.
	overlap := func(i int) *disruption {
		end := starts[i].Add(durations[i])
		for k := range disruptions {
			if d := &disruptions[k]; d.start.Before(end) && d.end.After(starts[i]) {
				return d
			}
		}
		return nil
	}
	var calm []time.Duration
	for i := range runs {
		if overlap(i) == nil {
			calm = append(calm, durations[i])
		}
	}
	sort.Slice(calm, func(i, j int) bool { return calm[i] < calm[j] })
	t.Logf("runs without a restart: %d, median %v, slowest %v", len(calm), calm[len(calm)/2], calm[len(calm)-1])
	for i := range runs {
		d := overlap(i)
		if d == nil {
			continue
		}
		var around time.Duration
		for k := max(0, i-2); k <= min(runs-1, i+2); k++ {
			if overlap(k) == nil {
				around = max(around, durations[k])
			}
		}
		restart := d.end.Sub(d.start)
		limit := around + restart + 100*time.Millisecond
		t.Logf("run %d: %v, during a %s whose restart took %v (calm runs around it: up to %v; limit %v)", i, durations[i], d.what, restart, around, limit)
		if durations[i] > limit {
			t.Errorf("run %d took %v, more than the calm runs around it %v + the restart %v + 100ms\nthe plugin's calls meanwhile:\n%s", i, durations[i], around, restart, callsDuring(o.sup.Log(), starts[i], durations[i]))
		}
	}
	for i := range runs {
		t.Logf("run %d: %v", i, durations[i])
	}
	// dockerd never found the plugin's socket refusing: it logs each retry.
	dlog, err := os.ReadFile(filepath.Join(filepath.Dir(a.StateDir()), "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(dlog), "Unable to connect to plugin"); n != 0 {
		t.Errorf("dockerd retried a call to the plugin %d times", n)
	}

	// The ping went on through every restart: replies for every sequence
	// number sent (the last, maybe in flight when it is stopped, aside).
	a.MustDocker("kill", "-s", "INT", "p1")
	logs, _ := a.Docker("logs", "p1")
	seqs := map[int]bool{}
	maxSeq := -1
	for _, m := range regexp.MustCompile(`seq=(\d+)`).FindAllStringSubmatch(logs, -1) {
		n, _ := strconv.Atoi(m[1])
		seqs[n] = true
		maxSeq = max(maxSeq, n)
	}
	if lost := maxSeq + 1 - len(seqs); lost != 0 || len(seqs) < 50 {
		t.Fatalf("ping: %d replies up to seq %d, %d lost:\n%s", len(seqs), maxSeq, lost, testns.Tail(logs, 20))
	}
	t.Logf("ping: %d replies, seq 0..%d, none lost", len(seqs), maxSeq)

	// State intact: the network is still known, and still serves.
	a.MustDocker("run", "--rm", "--net", "net40", "bb", "ping", "-c", "1", "-W", "2", "198.19.40.12")

	// Every line the plugin logged is JSON, and the lines of a call carry
	// its network and endpoint.
	checkJSONLog(t, o.sup.Log(), id)

	a.MustDocker("run", "-d", "--name", "s1", "--net", "net40", "bb", "sleep", "3600")
	t.Run("Status", func(t *testing.T) {
		code, rep := o.statusJSON(t, bin)
		if code != 0 || rep.Source != "plugin" || len(rep.Networks) != 1 || rep.Networks[0].ID != id || rep.Drifted() {
			t.Fatalf("clean host: exit %d, %+v", code, rep)
		}
		n := rep.Networks[0]
		if len(n.Links) != 2 || n.Links[0].Name != "vx_"+id[:12] || n.Links[1].Name != "br_"+id[:12] || len(n.Peers) != 1 || n.Peers[0].Name != "198.18.14.2" || len(n.Endpoints) != 1 {
			t.Fatalf("clean host: %+v", n)
		}
		code, table := o.status(t, bin)
		if code != 0 || !strings.Contains(table, "vx_"+id[:12]) || !strings.Contains(table, "1 networks, 1 endpoints, 0 swarm nodes; 0 drifted") {
			t.Fatalf("table: exit %d:\n%s", code, table)
		}
		t.Logf("status:\n%s", table)

		// Deleted behind the plugin's back.
		a.NS.IP("link", "del", "vx_"+id[:12])
		code, rep = o.statusJSON(t, bin)
		if code != 1 || !rep.Drifted() {
			t.Fatalf("vxlan link deleted: exit %d, %+v", code, rep)
		}
		n = rep.Networks[0]
		if strings.Join(n.Links[0].Drift, ";") != "link missing" || len(n.Peers[0].Drift) == 0 {
			t.Fatalf("vxlan link deleted: drift %+v", n)
		}
		code, table = o.status(t, bin)
		if code != 1 || !strings.Contains(table, "DRIFT: link missing") {
			t.Fatalf("vxlan link deleted, table: exit %d:\n%s", code, table)
		}
		t.Logf("status with drift:\n%s", table)

		// A restart restores the network's links from the state.
		if err := o.sup.Kill(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		o.ready(t)
		if code, rep = o.statusJSON(t, bin); code != 0 || rep.Drifted() {
			t.Fatalf("after the restart: exit %d, %+v", code, rep)
		}

		// With no plugin running, status reads the store itself, and exits
		// 3: no plugin answered; the plugin, stopped, left the socket it
		// did not make in place.
		if err := o.sup.Stop(); err != nil {
			t.Fatalf("plugin exit after SIGTERM: %v", err)
		}
		if !a.PluginSocketExists() {
			t.Fatal("the plugin removed the socket passed in")
		}
		if code, rep = o.statusJSON(t, bin, "-timeout", "500ms"); code != statusNoPlugin || rep.Source != "store" || len(rep.Networks) != 1 || rep.Drifted() {
			t.Fatalf("from the store: exit %d, %+v", code, rep)
		}
		if err := o.sup.Start(o.argv(bin)...); err != nil {
			t.Fatal(err)
		}
		o.ready(t)
	})

	a.MustDocker("rm", "-f", "p1", "s1")
	b.MustDocker("rm", "-f", "p2")
}

// callsDuring returns the plugin's JSON log lines from start to start+d.
func callsDuring(log string, start time.Time, d time.Duration) string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		var rec struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if !rec.Time.Before(start) && !rec.Time.After(start.Add(d)) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// checkJSONLog checks that every line the plugin wrote (between the
// supervisor's own "---" lines) is a JSON object, and that the lines of
// the calls on network id carry its endpoint too.
func checkJSONLog(t *testing.T, log, id string) {
	t.Helper()
	withEndpoint := 0
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if strings.HasPrefix(line, "--- ") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["call"] == "NetworkDriver.CreateEndpoint" || rec["call"] == "NetworkDriver.Join" {
			if rec["network"] != id[:12] || rec["endpoint"] == nil || rec["endpoint"] == "" {
				t.Fatalf("call log line without its network and endpoint: %s", line)
			}
			withEndpoint++
		}
	}
	if withEndpoint == 0 {
		t.Fatal("no call log line found")
	}
}

// The install script builds the binary and puts it and the units under
// DESTDIR and PREFIX; the units pass systemd-analyze verify.
func TestInstallScript(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	dest := t.TempDir()
	cmd := exec.Command("../../scripts/install.sh")
	cmd.Env = append(os.Environ(), "DESTDIR="+dest, "PREFIX=/opt/dvp")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	for _, f := range []string{"opt/dvp/bin/docker-vxlan-plugin", "etc/systemd/system/docker-vxlan-plugin.socket", "etc/systemd/system/docker-vxlan-plugin.service", "etc/default/docker-vxlan-plugin"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Fatal(err)
		}
	}
	unit, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system/docker-vxlan-plugin.service"))
	if err != nil || !strings.Contains(string(unit), "ExecStart=/opt/dvp/bin/docker-vxlan-plugin $DVP_FLAGS") {
		t.Fatalf("service unit: %v\n%s", err, unit)
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		testns.Skip(t, "needs systemd-analyze (apt-get install systemd)")
	}
	if out, err := exec.Command("../../scripts/verify-units.sh").CombinedOutput(); err != nil {
		t.Fatalf("verify-units.sh: %v\n%s", err, out)
	}
}
