package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
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

// nsHTTPClient is an HTTP client whose connections are made inside ns, to
// reach servers listening there.
func nsHTTPClient(t *testing.T, ns *testns.NS) *http.Client {
	t.Helper()
	h := ns.Open()
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := h.Do(func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}}}
}

// httpGet returns the body of a GET of u, or an error naming the status.
func httpGet(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	return string(b), nil
}

// listeners lists the TCP sockets listening in ns, as ss shows them
// (local address:port, then the process).
func listeners(t *testing.T, ns *testns.NS) string {
	t.Helper()
	out, err := ns.Exec("ss", "-Hltnp")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// startPrometheus runs Debian's Prometheus server in ns, with a
// configuration of its own that scrapes target every second and loads
// rules, its data in a temporary directory, listening on 127.0.0.1:9090
// in ns. It is ended by its pid when the test ends.
func startPrometheus(t *testing.T, ns *testns.NS, target, rules string) *http.Client {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		testns.Skip(t, "the prometheus server is not installed (Debian package prometheus)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: dvp
    static_configs:
      - targets: ['%s']
`, rules, target)
	cfgFile := testns.WriteFile(t, filepath.Join(dir, "prometheus.yml"), cfg, 0o644)
	out := &testns.Output{}
	cmd := exec.Command("ip", "netns", "exec", ns.Name, bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:9090", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // ip netns exec execs prometheus: the pid is the server's
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out)
		}
	})
	c := nsHTTPClient(t, ns)
	testns.Eventually(t, 30*time.Second, 200*time.Millisecond, "prometheus ready", func() error {
		select {
		case <-done:
			return fmt.Errorf("prometheus exited: %s", out)
		default:
		}
		_, err := httpGet(c, "http://127.0.0.1:9090/-/ready")
		return err
	})
	return c
}

// promQuery asks Prometheus's query API for the instant value of expr: the
// value of each series, keyed by its labels (without __name__) as
// Prometheus words them.
func promQuery(c *http.Client, expr string) (map[string]float64, error) {
	body, err := httpGet(c, "http://127.0.0.1:9090/api/v1/query?query="+url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" {
		return nil, fmt.Errorf("query %s: %v: %s", expr, err, body)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		delete(s.Metric, "__name__")
		v, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		if err != nil {
			return nil, err
		}
		b, _ := json.Marshal(s.Metric)
		out[string(b)] = v
	}
	return out, nil
}

// TestIntegrationMetricsPrometheus: the plugin on a namespaced dockerd
// serves no metrics unless asked; asked, it listens on the address given
// only, and Debian's Prometheus server scrapes it: after a network
// create, a container run and a bad option, the query API returns the
// series and values these made; the alert rules load; promtool accepts a
// scrape.
func TestIntegrationMetricsPrometheus(t *testing.T) {
	dockerhost.Require(t)
	if _, err := exec.LookPath("promtool"); err != nil {
		testns.Skip(t, "promtool is not installed (Debian package prometheus)")
	}
	bin := buildPlugin(t)
	ns, peer := testns.New(t), testns.New(t)
	ul, _ := testns.Underlay(t, ns, peer, netip.MustParsePrefix("198.18.13.1/24"), netip.MustParsePrefix("198.18.13.2/24"))
	ns.IP("addr", "add", "198.18.14.1/24", "dev", "lo") // a second address of the host, where nothing may listen
	h := dockerhost.Start(t, ns)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log:\n%s", h.PluginLog())
		}
	})

	// Off unless asked: the plugin listens on no TCP port.
	h.StartPlugin(bin, "-d", "-vtepdev", ul, "-state-dir", h.StateDir())
	if l := listeners(t, ns); strings.Contains(l, "docker-vxlan-pl") {
		t.Fatalf("without -metrics-addr the plugin listens on TCP:\n%s", l)
	}
	if err := h.StopPlugin(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// Asked: on that address and port only.
	const addr = "198.18.13.1:9473"
	h.StartPlugin(bin, "-d", "-vtepdev", ul, "-state-dir", h.StateDir(), "-metrics-addr", addr)
	var ours []string
	for _, line := range strings.Split(strings.TrimSpace(listeners(t, ns)), "\n") {
		if strings.Contains(line, "docker-vxlan-pl") {
			ours = append(ours, strings.Fields(line)[3])
		}
	}
	if len(ours) != 1 || ours[0] != addr {
		t.Fatalf("with -metrics-addr %s the plugin listens on %v", addr, ours)
	}
	c := nsHTTPClient(t, ns)
	for _, other := range []string{"127.0.0.1:9473", "198.18.14.1:9473"} {
		if _, err := httpGet(c, "http://"+other+"/metrics"); err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("GET http://%s/metrics: %v, want connection refused", other, err)
		}
	}

	h.ImportBusybox("bb")
	id := h.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.13.0/24", "--gateway", "198.19.13.1",
		"-o", "VxlanId=1313", "-o", "Peers=198.18.13.2", "m13")
	short := id[:12]
	h.MustDocker("run", "-d", "--name", "c13", "--net", "m13", "--ip", "198.19.13.11", "bb", "sleep", "3600")
	if _, err := h.Docker("network", "create", "-d", "vxlan", "-o", "VxlanId=abc", "bad13"); err == nil {
		t.Fatal("a network with VxlanId=abc was created")
	}
	// Traffic on the vxlan link: the container's pings flood to the peer.
	_, _ = h.Docker("exec", "c13", "ping", "-c", "3", "-W", "1", "198.19.13.99")

	rules, err := filepath.Abs(filepath.Join("..", "..", "dist", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	prom := startPrometheus(t, ns, addr, rules)
	netLabel := fmt.Sprintf(`{"network":%q}`, short)
	want := []struct {
		expr, series string
		check        func(float64) bool
		says         string
	}{
		{`up{job="dvp"}`, `{"instance":"` + addr + `","job":"dvp"}`, func(v float64) bool { return v == 1 }, "1"},
		{`sum by (result) (dvp_calls_total{call="NetworkDriver.CreateNetwork"})`, `{"result":"error"}`, func(v float64) bool { return v == 1 }, "1"},
		{`sum by (result) (dvp_calls_total{call="NetworkDriver.CreateNetwork"})`, `{"result":"ok"}`, func(v float64) bool { return v == 1 }, "1"},
		{`sum by (result) (dvp_calls_total{call="NetworkDriver.Join"})`, `{"result":"ok"}`, func(v float64) bool { return v == 1 }, "1"},
		{`sum by (call) (dvp_call_duration_seconds_count{call="NetworkDriver.CreateEndpoint"})`, `{"call":"NetworkDriver.CreateEndpoint"}`,
			func(v float64) bool { return v == 1 }, "1"},
		{`sum by (kind, scope, control_plane) (dvp_networks)`, `{"control_plane":"none","kind":"bridge","scope":"local"}`,
			func(v float64) bool { return v == 1 }, "1"},
		{`sum by (network) (dvp_network_endpoints)`, netLabel, func(v float64) bool { return v == 1 }, "1"},
		{`sum by (network) (dvp_network_peers)`, netLabel, func(v float64) bool { return v == 1 }, "1 (198.18.13.2)"},
		{`sum by (network) (dvp_network_fdb_entries)`, netLabel, func(v float64) bool { return v >= 1 }, "at least 1"},
		{`sum by (network) (dvp_network_vxlan_packets_total{direction="transmit"})`, netLabel, func(v float64) bool { return v >= 3 }, "at least 3"},
		{`sum(dvp_released_links)`, `{}`, func(v float64) bool { return v == 0 }, "0"},
		{`sum by (reason) (dvp_restore_drift{reason="missing_network"})`, `{"reason":"missing_network"}`, func(v float64) bool { return v == 0 }, "0"},
		{`count(dvp_build_info == 1)`, `{}`, func(v float64) bool { return v == 1 }, "1"},
	}
	for _, w := range want {
		testns.Eventually(t, 30*time.Second, 500*time.Millisecond, w.expr, func() error {
			got, err := promQuery(prom, w.expr)
			if err != nil {
				return err
			}
			v, ok := got[w.series]
			if !ok || !w.check(v) {
				return fmt.Errorf("%s: %v, want %s %s", w.expr, got, w.series, w.says)
			}
			return nil
		})
	}

	// The alert rules loaded, and evaluate without error.
	testns.Eventually(t, 30*time.Second, 500*time.Millisecond, "rules loaded", func() error {
		body, err := httpGet(prom, "http://127.0.0.1:9090/api/v1/rules?type=alert")
		if err != nil {
			return err
		}
		var r struct {
			Data struct {
				Groups []struct {
					Name  string
					Rules []struct{ Name, Health, LastError string }
				}
			}
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return err
		}
		n := 0
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				if rule.Health != "ok" {
					return fmt.Errorf("rule %s: health %q %s", rule.Name, rule.Health, rule.LastError)
				}
				n++
			}
		}
		if n != 4 {
			return fmt.Errorf("%d alert rules evaluated, want 4: %s", n, body)
		}
		return nil
	})

	// promtool accepts a scrape, in the format Prometheus asks for.
	scrape, err := httpGet(c, "http://"+addr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = strings.NewReader(scrape)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	if strings.Contains(scrape, "198.19.13.11") || strings.Contains(scrape, "198.18.13.2") {
		t.Error("the scrape carries an address")
	}
	h.MustDocker("rm", "-f", "c13")
	h.RemoveNetwork("m13")
}

// TestIntegrationManagedPluginMetrics: the managed plugin's METRICS_ADDR
// setting serves the metrics on the host's network, at that address.
func TestIntegrationManagedPluginMetrics(t *testing.T) {
	dockerhost.Require(t)
	dir := dockerhost.BuildManagedPlugin(t, "../..")
	fab := dockerhost.NewFabric(t)
	ns, addr := fab.Add()
	h := dockerhost.Start(t, ns)
	metricsAddr := net.JoinHostPort(addr.String(), "9474")
	h.InstallPlugin(pluginName, dir, "VTEPDEV="+dockerhost.Underlay, "SCOPE=local", "METRICS_ADDR="+metricsAddr)
	h.MustDocker("network", "create", "-d", pluginName, "--subnet", "198.19.31.0/24", "--gateway", "198.19.31.1", "-o", "VxlanId=31", "n31")
	c := nsHTTPClient(t, ns)
	var scrape string
	testns.Eventually(t, 10*time.Second, 200*time.Millisecond, "the managed plugin's metrics", func() error {
		var err error
		scrape, err = httpGet(c, "http://"+metricsAddr+"/metrics")
		return err
	})
	for _, line := range []string{
		`dvp_networks{control_plane="none",kind="bridge",scope="local"} 1`,
		`dvp_calls_total{call="NetworkDriver.CreateNetwork",result="ok"} 1`,
	} {
		if !strings.Contains(scrape, "\n"+line+"\n") {
			t.Errorf("the managed plugin's scrape has no line %s:\n%s", line, testns.Tail(scrape, 40))
		}
	}
	if _, err := httpGet(c, "http://127.0.0.1:9474/metrics"); err == nil {
		t.Error("the managed plugin serves metrics on 127.0.0.1 too")
	}
	h.RemoveNetwork("n31")
}
