package docker

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
)

// socketClient serves d's handler on a unix socket and returns a client
// that posts to it the way dockerd does.
func socketClient(b *testing.B, d *Driver) func(call, body string) string {
	b.Helper()
	sock := filepath.Join(b.TempDir(), "vxlan.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: NewHandler(d)}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	return func(call, body string) string {
		resp, err := client.Post("http://plugin/"+call, "", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(out), `"Err"`) {
			b.Fatalf("%s: %s", call, out)
		}
		return string(out)
	}
}

// settle is how long the benchmark waits after creating its networks.
const settle = 5 * time.Second

// subnet returns the first three octets of the i-th /24 of 198.18.0.0/15.
func subnet(i int) string { return fmt.Sprintf("198.%d.%d", 18+i/256, i%256) }

// BenchmarkContainerStartStop drives the plugin over its socket, on the
// real kernel, with the calls one container start and stop makes:
// CreateEndpoint, Join, Leave, DeleteEndpoint. It reports p50 and p99 per
// container with 1 and with 500 networks present. Deleting the veth pair
// waits for an RCU grace period in the kernel (about 16 ms here), which
// dominates.
//
// The ipv6=off variants disable IPv6 in the namespace. They separate the
// plugin's own cost, which is flat, from the kernel's: on every link
// change without carrier and on every link deletion IPv6 walks its whole
// routing table, which holds routes for every link of every network, so
// with IPv6 on the kernel's share grows with the number of networks.
func BenchmarkContainerStartStop(b *testing.B) {
	for _, run := range []struct {
		networks int
		ipv6     bool
	}{{1, true}, {500, true}, {1, false}, {500, false}} {
		networks := run.networks
		b.Run(fmt.Sprintf("networks=%d/ipv6=%v", networks, map[bool]string{true: "on", false: "off"}[run.ipv6]), func(b *testing.B) {
			ns := testns.New(b)
			if !run.ipv6 {
				for _, k := range []string{"all", "default"} {
					if _, err := ns.Exec("sysctl", "-qw", "net.ipv6.conf."+k+".disable_ipv6=1"); err != nil {
						b.Fatal(err)
					}
				}
			}
			d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: linuxhost.New(ns.Dial())})
			if err != nil {
				b.Fatal(err)
			}
			post := socketClient(b, d)
			for i := 0; i < networks; i++ {
				// Each network its own /24 of 198.18.0.0/15.
				post("NetworkDriver.CreateNetwork", fmt.Sprintf(`{"NetworkID":"net%09d","Options":{"com.docker.network.generic":{"VxlanId":"%d"}},"IPv4Data":[{"Pool":"%[3]s.0/24","Gateway":"%[3]s.1/24"}]}`, i, i+1, subnet(i)))
			}
			// Let the kernel's timers for the new links (IPv6 DAD, MLD
			// reports, router solicitations) run out before timing, so the
			// numbers are the steady state and not that burst.
			time.Sleep(settle)
			target, targetNet := fmt.Sprintf("net%09d", networks/2), subnet(networks/2)
			var took, starts, stops []time.Duration
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				ep := fmt.Sprintf("ep%012d", i)
				post("NetworkDriver.CreateEndpoint", fmt.Sprintf(`{"NetworkID":"%s","EndpointID":"%s","Interface":{"Address":"%s.%d/24"}}`, target, ep, targetNet, 2+i%250))
				post("NetworkDriver.Join", fmt.Sprintf(`{"NetworkID":"%s","EndpointID":"%s","SandboxKey":"/x"}`, target, ep))
				mid := time.Now()
				post("NetworkDriver.Leave", fmt.Sprintf(`{"NetworkID":"%s","EndpointID":"%s"}`, target, ep))
				post("NetworkDriver.DeleteEndpoint", fmt.Sprintf(`{"NetworkID":"%s","EndpointID":"%s"}`, target, ep))
				end := time.Now()
				took, starts, stops = append(took, end.Sub(start)), append(starts, mid.Sub(start)), append(stops, end.Sub(mid))
			}
			for _, m := range []struct {
				unit string
				d    []time.Duration
			}{{"container", took}, {"start", starts}, {"stop", stops}} {
				slices.Sort(m.d)
				b.ReportMetric(float64(m.d[len(m.d)/2].Microseconds()), "p50-µs/"+m.unit)
				b.ReportMetric(float64(m.d[len(m.d)*99/100].Microseconds()), "p99-µs/"+m.unit)
			}
		})
	}
}

// BenchmarkRestore measures a start with many networks known to the
// state and present on the host: loading the store, adopting every
// network's links and looking for orphans.
func BenchmarkRestore(b *testing.B) {
	for _, networks := range []int{100, 1000} {
		b.Run(fmt.Sprintf("networks=%d", networks), func(b *testing.B) {
			ns := testns.New(b)
			dir := b.TempDir()
			store, err := openStore(dir)
			if err != nil {
				b.Fatal(err)
			}
			d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: linuxhost.New(ns.Dial()), store: store})
			if err != nil {
				b.Fatal(err)
			}
			post := socketClient(b, d)
			for i := 0; i < networks; i++ {
				post("NetworkDriver.CreateNetwork", fmt.Sprintf(`{"NetworkID":"net%09d","Options":{"com.docker.network.generic":{"VxlanId":"%d"}},"IPv4Data":[{"Pool":"%[3]s.0/24","Gateway":"%[3]s.1/24"}]}`, i, i+1, subnet(i)))
			}
			store.Close()
			b.ResetTimer()
			for b.Loop() {
				st, err := openStore(dir)
				if err != nil {
					b.Fatal(err)
				}
				d, _ := NewDriver(Config{Scope: fabric.ScopeLocal, Host: linuxhost.New(ns.Dial()), store: st})
				rep, err := d.Restore(b.Context())
				if err != nil || rep.Networks != networks || len(rep.Failed) != 0 {
					b.Fatalf("%+v %v", rep, err)
				}
				st.Close()
			}
		})
	}
}
