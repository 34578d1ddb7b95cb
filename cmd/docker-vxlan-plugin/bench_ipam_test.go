package main

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// BenchmarkDockerRunIPAM times `docker run -d` on a network whose
// addresses come from the plugin's IPAM driver beside the same run on a
// network using Docker's default IPAM, alternating the two on one dockerd
// host, and reports both medians and their ratio. The target is a ratio of
// at most 1.15 (maxIPAMRunRatio): with DVP_BENCH_ASSERT=1, as .ci/run sets
// it, a higher ratio fails the benchmark. The removal of each container is
// not timed.
//
//	go test -run '^$' -bench DockerRunIPAM -benchtime 20x ./cmd/docker-vxlan-plugin
func BenchmarkDockerRunIPAM(b *testing.B) {
	h, _ := oneDockerHost(b)
	h.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.18.64.0/24", "-o", "VxlanId=64", "-o", "Peers=198.18.11.2", "default64")
	h.MustDocker("network", "create", "-d", "vxlan", "--ipam-driver", "vxlan", "--subnet", "198.18.65.0/24",
		"-o", "VxlanId=65", "-o", "Peers=198.18.11.2", "vxlan65")
	run := func(network string, i int) time.Duration {
		name := fmt.Sprintf("%s-%d", network, i)
		start := time.Now()
		h.MustDocker("run", "-d", "--name", name, "--net", network, "bb", "sleep", "600")
		took := time.Since(start)
		h.MustDocker("rm", "-f", name)
		return took
	}
	run("default64", -1) // warm both paths up
	run("vxlan65", -1)
	var def, own []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		def = append(def, run("default64", i))
		own = append(own, run("vxlan65", i))
	}
	b.StopTimer()
	slices.Sort(def)
	slices.Sort(own)
	pDef, pOwn := def[len(def)/2], own[len(own)/2]
	ratio := float64(pOwn) / float64(pDef)
	b.ReportMetric(float64(pDef.Milliseconds()), "ms/run-default-ipam-p50")
	b.ReportMetric(float64(pOwn.Milliseconds()), "ms/run-vxlan-ipam-p50")
	b.ReportMetric(ratio, "ratio")
	b.Logf("docker run -d, %d runs each, alternated: Docker's IPAM %v, the plugin's %v", b.N, def, own)
	if ratio > maxIPAMRunRatio && os.Getenv("DVP_BENCH_ASSERT") == "1" {
		b.Fatalf("docker run with the plugin's IPAM driver took %.2fx the run with Docker's IPAM (p50 %v vs %v), over %.2fx",
			ratio, pOwn, pDef, maxIPAMRunRatio)
	}
}

// maxIPAMRunRatio is the most a docker run with the plugin's IPAM driver
// may take, as a multiple of the same run with Docker's default IPAM.
const maxIPAMRunRatio = 1.15
