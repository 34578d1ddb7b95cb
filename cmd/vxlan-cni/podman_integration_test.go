package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/podmanhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// podmanConflist is the network vx70 as the README gives it for Podman,
// with this host's VTEP device, its peer and its share of the subnet.
func podmanConflist(t *testing.T, vtep, peer, first, last string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "vx70",
		"plugins": []any{map[string]any{
			"type": "vxlan", "VxlanId": 70, "VtepDev": vtep, "Peers": []string{peer},
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{
				"subnet": "198.19.70.0/24", "rangeStart": first, "rangeEnd": last, "gateway": "198.19.70.1",
			}}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIntegrationPodman(t *testing.T) {
	podmanhost.Require(t)
	dir := pluginDir(t)
	nsA, nsB := testns.New(t), testns.New(t)
	ulA, ulB := testns.Underlay(t, nsA, nsB, netip.MustParsePrefix("198.18.70.1/24"), netip.MustParsePrefix("198.18.70.2/24"))
	hosts := []*podmanhost.Host{podmanhost.Start(t, nsA, dir), podmanhost.Start(t, nsB, dir)}
	hosts[0].AddNetwork("vx70", podmanConflist(t, ulA, "198.18.70.2", "198.19.70.10", "198.19.70.19"))
	hosts[1].AddNetwork("vx70", podmanConflist(t, ulB, "198.18.70.1", "198.19.70.20", "198.19.70.29"))

	var addrs []string
	for i, h := range hosts {
		h.ImportBusybox("busybox")
		name := fmt.Sprintf("c%d", i)
		h.Run(name, "vx70", "busybox", "sleep", "1000")
		addrs = append(addrs, h.MustPodman("inspect", "-f", "{{.NetworkSettings.Networks.vx70.IPAddress}}", name))
		if l := h.NS.IP("-o", "link", "show", "type", "vxlan"); !strings.Contains(l, "vx_") {
			t.Errorf("host %d: no vxlan link after podman run: %s", i, l)
		}
	}
	t.Logf("container addresses: %v", addrs)
	for i, h := range hosts {
		other := addrs[1-i]
		if out, err := h.Podman("exec", fmt.Sprintf("c%d", i), "ping", "-c", "3", "-W", "2", other); err != nil {
			t.Errorf("host %d: container cannot ping %s across hosts: %v\n%s", i, other, err, out)
		}
	}
	for i, h := range hosts {
		h.MustPodman("rm", "-f", "-t", "0", fmt.Sprintf("c%d", i))
		out := h.NS.IP("-o", "link", "show")
		for _, prefix := range []string{"vx_", "br_", "vh"} {
			if strings.Contains(out, prefix) {
				t.Errorf("host %d: links left after podman rm:\n%s", i, out)
				break
			}
		}
		if left := h.ReadCNIState("vxlan"); len(left) > 0 {
			t.Errorf("host %d: CNI plugin state left after podman rm: %v", i, left)
		}
	}
}
