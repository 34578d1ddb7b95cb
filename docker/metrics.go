package docker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
)

// MetricsPrefix starts the name of every metric of the plugin's own.
const MetricsPrefix = "dvp_"

// ScrapeTimeout bounds the kernel reads of one scrape.
const ScrapeTimeout = 10 * time.Second

// Metrics are the plugin's Prometheus metrics, in a registry of their own
// (never the process-wide default one): the calls the handler answers, the
// restore at start, the background deletion of released links, and, read
// at scrape time from the driver and the kernel through the same functions
// as the status report, its networks, endpoints, peers, swarm nodes, VNIs
// and vxlan link counters. Give it to NewDriver in Config.Metrics; serve
// Handler where the operator asked. A nil *Metrics records nothing.
//
// Labels are bounded: network (the short network ID, as `docker network
// ls` shows it: dockerd never tells a remote driver the network's name),
// call (a route of NewHandler), result, kind, scope, control_plane,
// direction, reason. No metric carries an address or a MAC.
type Metrics struct {
	reg *prometheus.Registry

	calls        *prometheus.CounterVec
	callSeconds  *prometheus.HistogramVec
	deleteLinks  prometheus.Counter
	deleteTime   prometheus.Histogram
	restoreTime  prometheus.Gauge
	restoreDrift *prometheus.GaugeVec
	readErrors   prometheus.Counter
}

// Call results, the values of the label result of dvp_calls_total.
const (
	resultOK         = "ok"          // answered without error
	resultError      = "error"       // answered with the driver's error
	resultBadRequest = "bad_request" // refused before the driver saw it: unreadable, too big, bad IDs
	resultTimeout    = "timeout"     // over the call timeout: cancelled and answered with an error
	resultNotFound   = "not_found"   // a call the plugin does not serve
)

// callUnknown is the call label of requests for calls the plugin does not
// serve: their paths are the client's, unbounded.
const callUnknown = "unknown"

// NewMetrics makes the registry and the metrics the plugin updates as it
// goes; the ones read at scrape time are added by NewDriver. It also holds
// the Go runtime's and the process's standard metrics (go_*, process_*).
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricsPrefix + "calls_total",
			Help: "Calls answered, by call (libnetwork's remote driver protocol and the plugin's own) and result.",
		}, []string{"call", "result"}),
		callSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricsPrefix + "call_duration_seconds",
			Help:    "Time from a call's arrival to its answer, by call.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25, 60},
		}, []string{"call"}),
		deleteLinks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricsPrefix + "released_links_deleted_total",
			Help: "Released links (of deleted networks and endpoints) the background deletion deleted.",
		}),
		deleteTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    MetricsPrefix + "released_links_deletion_duration_seconds",
			Help:    "Time the kernel took for one deletion request of the background deletion (a link group of released links).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		restoreTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricsPrefix + "restore_duration_seconds",
			Help: "Time the restore at start took: the state read and reconciled with the host.",
		}),
		restoreDrift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricsPrefix + "restore_drift",
			Help: "What the restore at start found differing from the state, by reason: missing_network (links made again), " +
				"failed_network (could not be made), orphan_link (made for a network the state does not know), released_link " +
				"(left released by the last run, deleted).",
		}, []string{"reason"}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricsPrefix + "kernel_read_errors_total",
			Help: "Scrapes whose kernel reads (vxlan link counters, FDB, VTEP filter) failed; their per-network kernel metrics are missing.",
		}),
	}
	for _, r := range []string{"missing_network", "failed_network", "orphan_link", "released_link"} {
		m.restoreDrift.WithLabelValues(r)
	}
	m.reg.MustRegister(m.calls, m.callSeconds, m.deleteLinks, m.deleteTime, m.restoreTime, m.restoreDrift, m.readErrors,
		buildInfo(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// buildInfo is dvp_build_info: 1, with the module version, the VCS commit
// and the Go version the binary was built with.
func buildInfo() prometheus.Collector {
	version, commit, goVersion := "unknown", "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version, goVersion = bi.Main.Version, bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        MetricsPrefix + "build_info",
		Help:        "Always 1; its labels say which build of the plugin runs.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": goVersion},
	})
	g.Set(1)
	return g
}

// Handler serves the metrics in the Prometheus text format (or
// OpenMetrics, when asked), one scrape at a time: a second scrape made
// while one runs is answered 503 rather than read the kernel twice at once.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: 1,
		Timeout:             ScrapeTimeout + 5*time.Second,
		EnableOpenMetrics:   true,
		ErrorHandling:       promhttp.ContinueOnError,
	})
}

// Registry is the metrics' registry, for tests and for a front end that
// adds its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveDeletion records one deletion request of the background deletion:
// give it to linuxhost.WithDeletionObserver.
func (m *Metrics) ObserveDeletion(links int, took time.Duration) {
	if m == nil {
		return
	}
	m.deleteLinks.Add(float64(links))
	m.deleteTime.Observe(took.Seconds())
}

// observeCall records one answered call.
func (m *Metrics) observeCall(call, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(call, result).Inc()
	m.callSeconds.WithLabelValues(call).Observe(took.Seconds())
}

// callResult is the result label of a call's outcome.
func callResult(err error) string {
	switch {
	case err == nil:
		return resultOK
	case errors.Is(err, errBadRequest):
		return resultBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return resultTimeout
	}
	return resultError
}

// observeRestore records what Restore found and how long it took.
func (m *Metrics) observeRestore(rep *RestoreReport, took time.Duration) {
	if m == nil {
		return
	}
	m.restoreTime.Set(took.Seconds())
	m.restoreDrift.WithLabelValues("missing_network").Set(float64(rep.Missing))
	m.restoreDrift.WithLabelValues("failed_network").Set(float64(len(rep.Failed)))
	m.restoreDrift.WithLabelValues("orphan_link").Set(float64(len(rep.Orphans)))
	m.restoreDrift.WithLabelValues("released_link").Set(float64(rep.Reaped))
}

// FilterDropReader is what a VTEP filter offers the metrics: the packets it
// dropped on each network's vxlan link since the filter was set up, by
// network ID. A Host that implements it gets
// dvp_vtep_filter_dropped_packets_total (*linuxhost.Host does); for one
// that does not, the metric is absent.
type FilterDropReader interface {
	FilterDrops(ctx context.Context, specs []*fabric.NetworkSpec) (map[string]uint64, error)
}

// hostCounters is what a Host offers the metrics and the status report
// beyond the Host interface; *linuxhost.Host does, unit tests' fakes may
// not.
type hostCounters interface {
	Counters(ctx context.Context, specs []*fabric.NetworkSpec) (map[string]*linuxhost.NetworkCounters, error)
	Released() int
}

// register adds to the registry the metrics read from d at scrape time.
func (m *Metrics) register(d *Driver) error {
	if m == nil {
		return nil
	}
	if err := m.reg.Register(newDriverCollector(d, m)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// driverCollector reads the driver's census (census, status.go) and the
// kernel's counters (linuxhost.Host.Counters), the sources of the status
// report, at each scrape.
type driverCollector struct {
	d *Driver
	m *Metrics

	networks, info, endpoints, peers, fdb *prometheus.Desc
	bytes, packets, drops, errs           *prometheus.Desc
	nodes, released, vniAlloc, vniFree    *prometheus.Desc
	filterDrops                           *prometheus.Desc
}

func newDriverCollector(d *Driver, m *Metrics) *driverCollector {
	net := []string{"network"}
	dir := []string{"network", "direction"}
	desc := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(MetricsPrefix+name, help, labels, nil)
	}
	return &driverCollector{
		d: d, m: m,
		networks: desc("networks", "Networks the plugin holds, by kind, scope and control plane.", []string{"kind", "scope", "control_plane"}),
		info: desc("network_info", "Always 1 for each network the plugin holds; its labels say the network's kind and control plane.",
			[]string{"network", "kind", "control_plane"}),
		endpoints: desc("network_endpoints", "Endpoints (containers' attachments) of each network.", net),
		peers: desc("network_peers",
			"Remote VTEPs each network's vxlan link floods to: its head-end replication entries (all-zero MAC) in the kernel's FDB.", net),
		fdb:         desc("network_fdb_entries", "Entries of each network's vxlan link's own FDB in the kernel (remote MACs and peers).", net),
		bytes:       desc("network_vxlan_bytes_total", "Bytes each network's vxlan link received and transmitted, as the kernel counts them.", dir),
		packets:     desc("network_vxlan_packets_total", "Packets each network's vxlan link received and transmitted.", dir),
		drops:       desc("network_vxlan_drops_total", "Packets each network's vxlan link dropped, receiving and transmitting.", dir),
		errs:        desc("network_vxlan_errors_total", "Receive and transmit errors of each network's vxlan link.", dir),
		nodes:       desc("swarm_nodes", "Swarm nodes dockerd announced to the plugin (global scope).", nil),
		released:    desc("released_links", "Links of deleted networks and endpoints waiting for the background deletion.", nil),
		vniAlloc:    desc("vnis_allocated", "VNIs of the plugin's range this swarm manager allocated to networks.", nil),
		vniFree:     desc("vnis_free", "VNIs of the plugin's range left to allocate.", nil),
		filterDrops: desc("vtep_filter_dropped_packets_total", "Packets the VTEP filter dropped on each network's vxlan link.", net),
	}
}

// Describe sends every metric's description.
func (c *driverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.networks, c.info, c.endpoints, c.peers, c.fdb, c.bytes, c.packets, c.drops, c.errs,
		c.nodes, c.released, c.vniAlloc, c.vniFree, c.filterDrops} {
		ch <- d
	}
}

// Collect reads the driver and the kernel and sends the metrics.
func (c *driverCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	cen := c.d.census(ctx, true)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	type group struct{ kind, controlPlane string }
	byGroup := map[group]int{}
	for _, n := range cen.Networks {
		byGroup[group{string(n.Spec.Kind), n.Spec.ControlPlane.String()}]++
	}
	for g, count := range byGroup {
		gauge(c.networks, float64(count), g.kind, c.d.cfg.Scope, g.controlPlane)
	}
	for _, n := range cen.Networks {
		id := fabric.ShortID(n.Spec.ID)
		gauge(c.info, 1, id, string(n.Spec.Kind), n.Spec.ControlPlane.String())
		gauge(c.endpoints, float64(n.Endpoints), id)
		k := cen.Counters[n.Spec.ID]
		if k == nil {
			continue // a parent network, a vxlan link missing, or a failed read
		}
		gauge(c.peers, float64(k.FDBPeers), id)
		gauge(c.fdb, float64(k.FDBEntries), id)
		t := k.Traffic
		counter(c.bytes, t.RxBytes, id, "receive")
		counter(c.bytes, t.TxBytes, id, "transmit")
		counter(c.packets, t.RxPackets, id, "receive")
		counter(c.packets, t.TxPackets, id, "transmit")
		counter(c.drops, t.RxDropped, id, "receive")
		counter(c.drops, t.TxDropped, id, "transmit")
		counter(c.errs, t.RxErrors, id, "receive")
		counter(c.errs, t.TxErrors, id, "transmit")
		if drops, ok := cen.FilterDrops[n.Spec.ID]; ok {
			counter(c.filterDrops, drops, id)
		}
	}
	gauge(c.nodes, float64(cen.Nodes))
	if cen.Released >= 0 {
		gauge(c.released, float64(cen.Released))
	}
	if c.d.cfg.Scope == fabric.ScopeGlobal {
		gauge(c.vniAlloc, float64(cen.VNIsAllocated))
		gauge(c.vniFree, float64(cen.VNIsFree))
	}
	if cen.ReadErr != nil {
		c.m.readErrors.Inc()
		c.d.log.Warn("metrics: reading the kernel's counters", "error", cen.ReadErr)
	}
}
