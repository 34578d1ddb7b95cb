package main

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
)

// `docker network rm A; docker network create B` never fails because A's
// vxlan link, still waiting for its deletion in the background, holds B's
// UDP port with other socket flags: on three ports at once, networks with
// and without GBP (which the kernel cannot have up on one port together)
// are removed and created in turn through dockerd, each with a VNI of its
// own; every create succeeds and nothing is left.
func TestIntegrationCreateAfterRemoveOtherSocketFlags(t *testing.T) {
	h, _ := oneDockerHost(t)
	const ports, rounds = 3, 8
	var wg sync.WaitGroup
	errs := make([]error, ports)
	for p := range ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := ""
			for i := range rounds {
				name := fmt.Sprintf("r%d-%d", p, i)
				if prev != "" {
					if out, err := h.Docker("network", "rm", prev); err != nil {
						errs[p] = fmt.Errorf("rm %s: %v: %s", prev, err, out)
						return
					}
				}
				out, err := h.Docker("network", "create", "-d", "vxlan", "--subnet", fmt.Sprintf("198.19.%d.0/24", 100+10*p+i),
					"-o", "VxlanId="+strconv.Itoa(5000+100*p+i), "-o", "Port="+strconv.Itoa(4800+p), "-o", "GBP="+strconv.FormatBool(i%2 == 0), name)
				if err != nil {
					errs[p] = fmt.Errorf("create %s (GBP %v) right after rm %s: %v: %s", name, i%2 == 0, prev, err, out)
					return
				}
				prev = name
			}
			if out, err := h.Docker("network", "rm", prev); err != nil {
				errs[p] = fmt.Errorf("rm %s: %v: %s", prev, err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if left := ownedLinks(t, h); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}
