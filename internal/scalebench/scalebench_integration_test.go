package scalebench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// A small run of the benchmark against the real plugin binary: every
// figure is measured and nothing is left.
func TestIntegrationScaleBench(t *testing.T) {
	testns.RequireRoot(t)
	bin := filepath.Join(t.TempDir(), "docker-vxlan-plugin")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/TrilliumIT/docker-vxlan-plugin/cmd/docker-vxlan-plugin").CombinedOutput(); err != nil {
		t.Fatalf("building the plugin: %v\n%s", err, out)
	}
	res, err := Run(t.Context(), Config{Plugin: bin, Networks: 3, IPv6: true, Containers: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.ContainerP50 <= 0 || res.CreateNetwork <= 0 || res.DeleteNetwork <= 0 || res.RestartToAnswer <= 0 || res.RSS < 1<<20 || res.Teardown <= 0 {
		t.Fatalf("a figure is missing: %+v", res)
	}
	if res.TeardownContainers == 0 || res.TeardownContainerP50 <= 0 || res.TeardownContainerMax < res.TeardownContainerP50 {
		t.Fatalf("no container cycle timed during the teardown: %+v", res)
	}
	if res.LinksLeft != 0 {
		t.Fatalf("%d links left", res.LinksLeft)
	}
	if res.Teardown > time.Minute {
		t.Fatalf("teardown did not finish: %v", res.Teardown)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), fmt.Sprintf("dvp-scale-%d", os.Getpid())) {
		t.Fatalf("namespace left:\n%s", out)
	}
}
