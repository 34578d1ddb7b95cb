// Package layers holds the test of the module's layering: imports flow one
// way, cmd → {docker, cni} → {fabric, linuxhost} → {vxlan → rtlink,
// vtepfilter}, and each binary links only what it needs.
package layers

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/TrilliumIT/docker-vxlan-plugin/"

// deps lists the packages pkg depends on, directly or not, with `go list`.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "./"+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps ./%s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestImportsFlowOneWay(t *testing.T) {
	forbidden := map[string][]string{
		"rtlink": {"vxlan", "fabric", "linuxhost", "docker", "cni"},
		"vxlan":  {"fabric", "linuxhost", "docker", "cni"},
		// The VTEP filter's table, beside vxlan: it knows nftables, not the
		// network model.
		"vtepfilter": {"rtlink", "vxlan", "fabric", "linuxhost", "docker", "cni"},
		"fabric":     {"linuxhost", "docker", "cni"},
		"linuxhost":  {"docker", "cni"},
		"docker":     {"cni"},
		"cni":        {"docker"},
	}
	for pkg, never := range forbidden {
		all := deps(t, "../../"+pkg)
		for _, n := range never {
			for _, d := range all {
				if d == module+n || strings.HasPrefix(d, module+n+"/") {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
		}
	}
}

// The CNI plugin's binary links neither the Docker front end (its HTTP
// handler, its bbolt store) nor a second netlink library.
func TestCNIBinaryDeps(t *testing.T) {
	all := deps(t, "../../cmd/vxlan-cni")
	for _, d := range all {
		if strings.HasPrefix(d, module+"docker") || strings.HasPrefix(d, "go.etcd.io/bbolt") || strings.HasPrefix(d, "github.com/vishvananda/netlink") {
			t.Errorf("vxlan-cni links %s", d)
		}
	}
	if !slices.Contains(all, module+"linuxhost") {
		t.Errorf("vxlan-cni does not link linuxhost: %v", all)
	}
}
