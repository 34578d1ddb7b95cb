package docker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
)

// countingHost is a fake host that also counts, as *linuxhost.Host does:
// each vxlan network's link has sent and received a fixed amount, and has
// an FDB entry per peer and one remote MAC.
type countingHost struct {
	*fakeHost
	released int
	drops    map[string]uint64 // a VTEP filter's drops, when not nil
	readErr  error
}

func (c *countingHost) Counters(_ context.Context, specs []*fabric.NetworkSpec) (map[string]*linuxhost.NetworkCounters, error) {
	if c.readErr != nil {
		return nil, c.readErr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*linuxhost.NetworkCounters, len(specs))
	for _, s := range specs {
		if s.Kind == fabric.KindParent || c.networks[s.ID] == nil {
			continue
		}
		peers := len(c.peers[s.VXLAN.Name])
		out[s.ID] = &linuxhost.NetworkCounters{Link: s.VXLAN.Name, FDBEntries: peers + 1, FDBPeers: peers,
			Traffic: linuxhost.Traffic{RxBytes: 1000, TxBytes: 2000, RxPackets: 10, TxPackets: 20, RxDropped: 1, TxErrors: 2}}
	}
	return out, nil
}

func (c *countingHost) Released() int { return c.released }

// filterHost has a VTEP filter.
type filterHost struct{ *countingHost }

func (f filterHost) FilterDrops(context.Context, []*fabric.NetworkSpec) (map[string]uint64, error) {
	return f.drops, nil
}

// scrape returns what the metrics handler serves, in the text format.
func scrape(t testing.TB, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// hasLine fails the test unless the scrape has the line.
func hasLine(t *testing.T, text, line string) {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return
		}
	}
	t.Errorf("the scrape has no line %q", line)
}

func TestMetricsCallsAndNetworks(t *testing.T) {
	host := &countingHost{fakeHost: newFakeHost(), released: 3}
	m := NewMetrics()
	d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(d))
	t.Cleanup(srv.Close)
	net1 := strings.Repeat("a", 64)
	ep := strings.Repeat("e", 64)
	for _, c := range []struct{ call, body string }{
		{"NetworkDriver.CreateNetwork", `{"NetworkID":"` + net1 +
			`","Options":{"com.docker.network.generic":{"VxlanId":"42","Peers":"198.18.0.2,198.18.0.3"}},"IPv4Data":[{"Gateway":"198.19.1.1/24"}]}`},
		{"NetworkDriver.CreateEndpoint", `{"NetworkID":"` + net1 + `","EndpointID":"` + ep + `","Interface":{"Address":"198.19.1.2/24"}}`},
		{"NetworkDriver.CreateNetwork", `{"NetworkID":"` + strings.Repeat("b", 64) + `","Options":{"com.docker.network.generic":{"VxlanId":"abc"}}}`},
		{"NetworkDriver.CreateNetwork", `{"NetworkID":"NOT-AN-ID"}`},
		{"NetworkDriver.Bogus", `{}`},
	} {
		post(t, srv, c.call, c.body)
	}
	for _, c := range []struct {
		call, result string
		want         float64
	}{
		{"NetworkDriver.CreateNetwork", resultOK, 1},
		{"NetworkDriver.CreateNetwork", resultError, 1},
		{"NetworkDriver.CreateNetwork", resultBadRequest, 1},
		{"NetworkDriver.CreateEndpoint", resultOK, 1},
		{callUnknown, resultNotFound, 1},
	} {
		if got := testutil.ToFloat64(m.calls.WithLabelValues(c.call, c.result)); got != c.want {
			t.Errorf("dvp_calls_total{call=%q,result=%q} = %v, want %v", c.call, c.result, got, c.want)
		}
	}
	text := scrape(t, m)
	short := fabric.ShortID(net1)
	for _, line := range []string{
		`dvp_call_duration_seconds_count{call="NetworkDriver.CreateNetwork"} 3`,
		`dvp_networks{control_plane="none",kind="bridge",scope="local"} 1`,
		`dvp_network_info{control_plane="none",kind="bridge",network="` + short + `"} 1`,
		`dvp_network_endpoints{network="` + short + `"} 1`,
		`dvp_network_peers{network="` + short + `"} 2`,
		`dvp_network_fdb_entries{network="` + short + `"} 3`,
		`dvp_network_vxlan_bytes_total{direction="receive",network="` + short + `"} 1000`,
		`dvp_network_vxlan_bytes_total{direction="transmit",network="` + short + `"} 2000`,
		`dvp_network_vxlan_drops_total{direction="receive",network="` + short + `"} 1`,
		`dvp_network_vxlan_errors_total{direction="transmit",network="` + short + `"} 2`,
		`dvp_released_links 3`,
		`dvp_swarm_nodes 0`,
	} {
		hasLine(t, text, line)
	}
	if strings.Contains(text, "dvp_vnis_") || strings.Contains(text, "dvp_vtep_filter") {
		t.Errorf("a local-scope plugin without a VTEP filter exports VNI or filter metrics:\n%s", text)
	}
	if !regexp.MustCompile(`(?m)^dvp_build_info\{commit="[^"]*",goversion="go[^"]+",version="[^"]*"\} 1$`).MatchString(text) {
		t.Errorf("no dvp_build_info line of value 1 in the scrape")
	}
	// Bounded labels: no address, no MAC.
	if loc := regexp.MustCompile(`198\.1[89]\.|fd00:|([0-9a-f]{2}:){5}[0-9a-f]{2}`).FindString(text); loc != "" {
		t.Errorf("the scrape carries an address or a MAC: %q", loc)
	}
	if problems, err := testutil.GatherAndLint(m.Registry()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}

	// The status report reads the same numbers.
	st := d.Status(t.Context())
	if len(st.Networks) != 1 || st.Networks[0].Counters == nil {
		t.Fatalf("status: %+v", st.Networks)
	}
	sc := st.Networks[0].Counters
	if sc.FDBPeers != 2 || sc.FDBEntries != 3 || sc.Traffic.TxBytes != 2000 || len(st.Networks[0].Endpoints) != 1 {
		t.Errorf("status counters %+v endpoints %d, the metrics' 2 peers, 3 entries, 2000 bytes sent, 1 endpoint", sc, len(st.Networks[0].Endpoints))
	}
}

// A call over its deadline is counted as a timeout.
func TestMetricsCallTimeout(t *testing.T) {
	host := &slowHost{fakeHost: newFakeHost(), op: "CreateNetwork", release: make(chan struct{})}
	t.Cleanup(func() { close(host.release) })
	m := NewMetrics()
	d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(d, WithCallTimeout(50*time.Millisecond)))
	t.Cleanup(srv.Close)
	postWithin(t, srv, "NetworkDriver.CreateNetwork", `{"NetworkID":"`+testNet+`","Options":{"com.docker.network.generic":{"VxlanId":"5"}}}`)
	if got := testutil.ToFloat64(m.calls.WithLabelValues("NetworkDriver.CreateNetwork", resultTimeout)); got != 1 {
		t.Fatalf("timeouts counted: %v, want 1", got)
	}
}

// A swarm manager exports its VNIs; a host with a VTEP filter its drops; a
// failed kernel read is counted and leaves the kernel's metrics out.
func TestMetricsGlobalFilterAndReadError(t *testing.T) {
	host := &countingHost{fakeHost: newFakeHost()}
	m := NewMetrics()
	d, err := NewDriver(Config{Scope: fabric.ScopeGlobal, Host: filterHost{host}, Metrics: m, VNIRange: VNIRange{Low: 100, High: 109}})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{strings.Repeat("1", 25), strings.Repeat("2", 25)}
	for _, id := range ids {
		opts, err := d.AllocateNetwork(t.Context(), &AllocateNetworkRequest{NetworkID: id, Options: map[string]string{}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateNetwork(t.Context(), &CreateNetworkRequest{NetworkID: id, Options: map[string]any{optGeneric: toAny(opts)}}); err != nil {
			t.Fatal(err)
		}
	}
	host.drops = map[string]uint64{ids[0]: 7}
	text := scrape(t, m)
	hasLine(t, text, "dvp_vnis_allocated 2")
	hasLine(t, text, "dvp_vnis_free 8")
	hasLine(t, text, `dvp_vtep_filter_dropped_packets_total{network="`+fabric.ShortID(ids[0])+`"} 7`)
	hasLine(t, text, `dvp_networks{control_plane="none",kind="bridge",scope="global"} 2`)

	host.readErr = fmt.Errorf("injected")
	text = scrape(t, m)
	if strings.Contains(text, "dvp_network_vxlan_bytes_total") {
		t.Error("kernel metrics exported after a failed read")
	}
	hasLine(t, text, `dvp_network_endpoints{network="`+fabric.ShortID(ids[1])+`"} 0`)
	if got := testutil.ToFloat64(m.readErrors); got != 1 {
		t.Errorf("dvp_kernel_read_errors_total = %v, want 1", got)
	}
}

// toAny turns AllocateNetwork's options into CreateNetwork's generic ones.
func toAny(opts map[string]string) map[string]any {
	out := make(map[string]any, len(opts))
	for k, v := range opts {
		out[k] = v
	}
	return out
}

// Restore's time and drift are recorded.
func TestMetricsRestore(t *testing.T) {
	m := NewMetrics()
	d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: newFakeHost(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	text := scrape(t, m)
	hasLine(t, text, `dvp_restore_drift{reason="missing_network"} 0`)
	if !strings.Contains(text, "\ndvp_restore_duration_seconds ") {
		t.Error("no dvp_restore_duration_seconds")
	}
}

// promtool, Prometheus's own checker, accepts a scrape.
func TestMetricsPromtoolCheck(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testns.Skip(t, "promtool not installed (Debian package prometheus): cannot check the exposition with it")
	}
	m, _ := networksWithMetrics(t, 3)
	m.ObserveDeletion(2, 30*time.Millisecond)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape(t, m))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// networksWithMetrics is a driver with metrics over a counting host,
// holding n networks (createNetworks).
func networksWithMetrics(t testing.TB, n int) (*Metrics, *Driver) {
	t.Helper()
	m := NewMetrics()
	d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: &countingHost{fakeHost: newFakeHost()}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	createNetworks(t, d, n)
	return m, d
}

// createNetworks makes n bridge networks with a peer each through the
// driver.
func createNetworks(t testing.TB, d *Driver, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%012x", i+1) + strings.Repeat("0", 52)
		req := &CreateNetworkRequest{NetworkID: id, Options: map[string]any{optGeneric: map[string]any{
			"VxlanId": fmt.Sprint(10000 + i), "Peers": "198.18.0.2"}}}
		if _, err := d.CreateNetwork(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkScrape4096 is one scrape, gathered and written in the text
// format, of a plugin holding 4096 networks with a peer each, over a fake
// host (the kernel's two dumps are measured by the linuxhost and rtlink
// benchmarks).
func BenchmarkScrape4096(b *testing.B) {
	m, _ := networksWithMetrics(b, 4096)
	h := m.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	size := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
