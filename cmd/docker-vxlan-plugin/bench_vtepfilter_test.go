package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// BenchmarkIntegrationVTEPFilter measures the tunnel between two
// containers on two namespaced dockerd hosts, with the VTEP filter and
// without it, side by side: TCP throughput with iperf3 (Debian's, run in
// the containers' namespaces) and the round-trip time of pings. Each
// iteration measures both, the network made again between them, with
// VtepFilter on (the table holds its rules) and off (no table at all).
//
//	go test -run X -bench IntegrationVTEPFilter -benchtime 3x ./cmd/docker-vxlan-plugin
func BenchmarkIntegrationVTEPFilter(b *testing.B) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		testns.Skip(b, "needs iperf3")
	}
	dockerhost.Require(b)
	bin := buildPlugin(b)
	sw := filterSwitch(b)
	a := filterDockerHost(b, sw, "swa", "198.18.45.1", bin)
	h := filterDockerHost(b, sw, "swb", "198.18.45.2", bin)
	results := map[string][]float64{}
	rtts := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		order := []bool{true, false}
		if i%2 == 1 { // alternate which goes first: the machine's load drifts
			order = []bool{false, true}
		}
		for _, on := range order {
			mode := fmt.Sprintf("filter=%v", on)
			bps, rtt := measureTunnel(b, a, h, on, i)
			results[mode] = append(results[mode], bps/1e6)
			rtts[mode] = append(rtts[mode], rtt)
		}
	}
	b.StopTimer()
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	meanD := func(ds []time.Duration) time.Duration {
		var s time.Duration
		for _, d := range ds {
			s += d
		}
		return s / time.Duration(len(ds))
	}
	on, off := mean(results["filter=true"]), mean(results["filter=false"])
	b.ReportMetric(on, "Mbit/s-filter")
	b.ReportMetric(off, "Mbit/s-nofilter")
	b.ReportMetric(float64(meanD(rtts["filter=true"]).Microseconds()), "µs-rtt-filter")
	b.ReportMetric(float64(meanD(rtts["filter=false"]).Microseconds()), "µs-rtt-nofilter")
	b.Logf("throughput with the filter %.0f Mbit/s, without %.0f Mbit/s (%+.1f%%); ping rtt with %v, without %v; runs (Mbit/s): %.0f / %.0f",
		on, off, 100*(on-off)/off, meanD(rtts["filter=true"]), meanD(rtts["filter=false"]), results["filter=true"], results["filter=false"])
}

var rttAvg = regexp.MustCompile(`= [0-9.]+/([0-9.]+)/`)

// measureTunnel makes the network on both hosts (VtepFilter as on), a
// container on each, and measures 3 s of iperf3 from a's container to
// h's and 20 pings; it removes them all again and returns the bits per
// second and the mean round trip.
func measureTunnel(b *testing.B, a, h *dockerhost.Host, on bool, i int) (float64, time.Duration) {
	b.Helper()
	name := fmt.Sprintf("bench%d", i)
	for j, host := range []*dockerhost.Host{a, h} {
		host.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.45.0/24", "--gateway", fmt.Sprintf("198.19.45.%d", 250+j),
			"-o", "VxlanId=45", "-o", "Peers="+[]string{"198.18.45.2", "198.18.45.1"}[j], "-o", fmt.Sprintf("VtepFilter=%v", on), name)
		host.MustDocker("run", "-d", "--name", name, "--net", name, "--ip", fmt.Sprintf("198.19.45.%d", 11+j), "bb", "sleep", "3600")
	}
	defer func() {
		for _, host := range []*dockerhost.Host{a, h} {
			host.MustDocker("rm", "-f", name)
			host.RemoveNetwork(name)
		}
	}()
	if on { // the packets went through the table's rules
		wantAdmitted(b, a.NS, 45, mustAddr("198.18.45.2"))
	}
	pid := func(host *dockerhost.Host) string { return host.MustDocker("inspect", "-f", "{{.State.Pid}}", name) }
	srv := exec.Command("nsenter", "-t", pid(h), "-n", "iperf3", "-s", "-1", "-B", "198.19.45.12")
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	ping, err := testns.Run("nsenter", "-t", pid(a), "-n", "ping", "-q", "-c", "20", "-i", "0.05", "198.19.45.12")
	if err != nil {
		b.Fatal(err)
	}
	m := rttAvg.FindStringSubmatch(ping)
	if m == nil {
		b.Fatalf("ping: %s", ping)
	}
	ms, _ := strconv.ParseFloat(m[1], 64)
	var out string
	for try := 0; ; try++ { // the server may not listen yet
		out, err = testns.Run("nsenter", "-t", pid(a), "-n", "iperf3", "-c", "198.19.45.12", "-t", "3", "-J")
		if err == nil || try == 20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		b.Fatalf("iperf3: %v\n%s", err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		b.Fatalf("iperf3 -J: %v\n%s", err, out)
	}
	return res.End.SumReceived.BitsPerSecond, time.Duration(ms * float64(time.Millisecond))
}
