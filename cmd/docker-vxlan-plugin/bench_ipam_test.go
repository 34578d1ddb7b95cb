package main

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkDockerRunIPAM times `docker run -d` on a network whose
// addresses come from the plugin's IPAM driver beside the same run on a
// network using Docker's default IPAM, alternating the two on one dockerd
// host, and reports both means and their ratio (the target: at most
// 1.15). The removal of each container is not timed.
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
	var def, own time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		def += run("default64", i)
		own += run("vxlan65", i)
	}
	b.StopTimer()
	b.ReportMetric(float64(def.Milliseconds())/float64(b.N), "ms/run-default-ipam")
	b.ReportMetric(float64(own.Milliseconds())/float64(b.N), "ms/run-vxlan-ipam")
	b.ReportMetric(float64(own)/float64(def), "ratio")
}
