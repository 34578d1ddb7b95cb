// Package layers holds the test of the module's layering: imports flow one
// way, cmd → {docker, cni} → {fabric, linuxhost, ipam} → {vxlan → rtlink,
// vtepfilter}, and each binary links only what it needs.
package layers

import (
	"os"
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
		"rtlink": {"vxlan", "fabric", "linuxhost", "ipam", "vtepfilter", "docker", "cni"},
		"vxlan":  {"fabric", "linuxhost", "ipam", "vtepfilter", "docker", "cni"},
		// The address allocator knows pools, leases and probes, not links.
		"ipam": {"rtlink", "vxlan", "vtepfilter", "fabric", "linuxhost", "docker", "cni"},
		// The VTEP filter's table, beside vxlan: it knows nftables, not the
		// network model.
		"vtepfilter": {"rtlink", "vxlan", "ipam", "fabric", "linuxhost", "docker", "cni"},
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

// The CNI plugins' binaries (vxlan-cni and vxlan-ipam) link neither the
// Docker front end (its HTTP handler, its bbolt store) nor a second
// netlink library.
func TestCNIBinaryDeps(t *testing.T) {
	for _, bin := range []string{"vxlan-cni", "vxlan-ipam"} {
		all := deps(t, "../../cmd/"+bin)
		for _, d := range all {
			if strings.HasPrefix(d, module+"docker") || strings.HasPrefix(d, "go.etcd.io/bbolt") || strings.HasPrefix(d, "github.com/vishvananda/netlink") {
				t.Errorf("%s links %s", bin, d)
			}
		}
		for _, want := range []string{"linuxhost", "ipam"} {
			if bin == "vxlan-cni" && want == "ipam" {
				continue
			}
			if !slices.Contains(all, module+want) {
				t.Errorf("%s does not link %s: %v", bin, want, all)
			}
		}
	}
}

// The library builds on every system, not only Linux: a program that
// imports vxlan builds on a developer's Mac or Windows machine (where
// every operation returns an error saying the system lacks rtnetlink).
func TestLibraryBuildsEverywhere(t *testing.T) {
	for _, goos := range []string{"darwin", "windows", "freebsd"} {
		cmd := exec.Command("go", "build", "../../vxlan", "../../rtlink")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go build ./vxlan ./rtlink: %v\n%s", goos, err, out)
		}
	}
}
