package cni

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/containernetworking/cni/libcni"
)

// BenchmarkAddDel times ADD followed by DEL of one container through libcni,
// for this plugin and for CNI's reference bridge plugin on the same host
// namespace with the same IPAM (host-local), interleaved in one run. Each
// network keeps a resident container, so both measure a container joining
// and leaving an existing network; vxlan-own-network-p50-ms is this
// plugin's ADD+DEL of a network's only container, which makes and removes
// the vxlan link and bridge too (the bridge plugin never removes its bridge).
//
// Metrics: p50 in milliseconds of each, and vxlan/bridge, the ratio of the
// p50s (target: at most 1.0).
func BenchmarkAddDel(b *testing.B) {
	requireCNI(b)
	hostNS, peerNS := testns.New(b), testns.New(b)
	ul, _ := testns.Underlay(b, hostNS, peerNS, netip.MustParsePrefix("198.18.80.1/24"), netip.MustParsePrefix("198.18.80.2/24"))
	h := newCNIHost(b, hostNS)
	vx := h.conflist(b, "bench-vx", "vxlan", "198.19.80.0/24", map[string]any{"VxlanId": 80, "VtepDev": ul, "Peers": "198.18.80.2"})
	lone := h.conflist(b, "bench-vx-lone", "vxlan", "198.19.82.0/24", map[string]any{"VxlanId": 82, "VtepDev": ul, "Peers": "198.18.80.2"})
	br := h.conflist(b, "bench-br", "bridge", "198.19.81.0/24", map[string]any{"bridge": "cnibr-bench"})
	ctr := testns.New(b)
	ctx := b.Context()
	for _, l := range []*libcni.NetworkConfigList{vx, br} {
		rt := runtimeConf("resident", testns.New(b))
		if _, err := h.cni.AddNetworkList(ctx, l, rt); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.cni.DelNetworkList(context.WithoutCancel(ctx), l, rt) })
	}
	cycle := func(l *libcni.NetworkConfigList) time.Duration {
		start := time.Now()
		if _, err := h.cni.AddNetworkList(ctx, l, runtimeConf("bench", ctr)); err != nil {
			b.Fatal(err)
		}
		if err := h.cni.DelNetworkList(ctx, l, runtimeConf("bench", ctr)); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	// The two are interleaved, first one then the other, so that both see
	// the same load; the network-making cycles run afterwards, as the
	// kernel's deferred work after deleting a network would slow whatever
	// comes next.
	var tv, tb, tl []time.Duration
	for b.Loop() {
		if len(tv)%2 == 0 {
			tv = append(tv, cycle(vx))
			tb = append(tb, cycle(br))
		} else {
			tb = append(tb, cycle(br))
			tv = append(tv, cycle(vx))
		}
	}
	b.StopTimer()
	for range tv {
		tl = append(tl, cycle(lone))
	}
	pv, pb := p50(tv), p50(tb)
	b.ReportMetric(ms(pv), "vxlan-p50-ms")
	b.ReportMetric(ms(pb), "bridge-p50-ms")
	b.ReportMetric(ms(p50(tl)), "vxlan-own-network-p50-ms")
	b.ReportMetric(float64(pv)/float64(pb), "vxlan/bridge")
	b.ReportMetric(0, "ns/op")
}

func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkAddDelIPAM times ADD followed by DEL of one container through
// libcni on a vxlan network whose addresses come from vxlan-ipam, and on
// the same network with host-local, interleaved in one run; each network
// keeps a resident container. vxlan-ipam probes the segment for every
// address it hands out (no answer: two probes 100 ms apart and a wait),
// host-local does not.
//
// Metrics: p50 in milliseconds of each, and their difference.
func BenchmarkAddDelIPAM(b *testing.B) {
	requireCNI(b)
	hostNS, peerNS := testns.New(b), testns.New(b)
	ul, _ := testns.Underlay(b, hostNS, peerNS, netip.MustParsePrefix("198.18.83.1/24"), netip.MustParsePrefix("198.18.83.2/24"))
	h := newCNIHost(b, hostNS)
	network := func(name string, vni int, ipam map[string]any) *libcni.NetworkConfigList {
		return confList(b, "1.0.0", name, map[string]any{"type": "vxlan", "VxlanId": vni, "VtepDev": ul, "Peers": "198.18.83.2", "ipam": ipam})
	}
	local := network("bench-hl", 83, map[string]any{"type": "host-local", "dataDir": h.ipamDir, "ranges": [][]map[string]string{{{"subnet": "198.19.83.0/24"}}}})
	probed := network("bench-ipam", 84, map[string]any{"type": IPAMPluginType, "dataDir": h.ipamDir, "subnet": "198.19.84.0/24"})
	ctr := testns.New(b)
	ctx := b.Context()
	for _, l := range []*libcni.NetworkConfigList{local, probed} {
		rt := runtimeConf("resident-"+l.Name, testns.New(b))
		if _, err := h.cni.AddNetworkList(ctx, l, rt); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.cni.DelNetworkList(context.WithoutCancel(ctx), l, rt) })
	}
	cycle := func(l *libcni.NetworkConfigList) time.Duration {
		start := time.Now()
		if _, err := h.cni.AddNetworkList(ctx, l, runtimeConf(l.Name, ctr)); err != nil {
			b.Fatal(err)
		}
		if err := h.cni.DelNetworkList(ctx, l, runtimeConf(l.Name, ctr)); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var tl, tp []time.Duration
	for b.Loop() {
		tl = append(tl, cycle(local))
		tp = append(tp, cycle(probed))
	}
	pl, pp := p50(tl), p50(tp)
	b.ReportMetric(ms(pl), "host-local-p50-ms")
	b.ReportMetric(ms(pp), "vxlan-ipam-p50-ms")
	b.ReportMetric(ms(pp-pl), "probe-cost-ms")
	b.ReportMetric(0, "ns/op")
}
