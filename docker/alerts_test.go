package docker

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// alertsDir holds the example alert rules shipped for the metrics.
var alertsDir = filepath.Join("..", "dist", "prometheus")

// TestAlertRules runs Prometheus's own checker on the example alert rules,
// and their unit tests, which show each alert firing on the series it
// watches.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testns.Skip(t, "promtool not installed (Debian package prometheus): cannot check the alert rules")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = alertsDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestAlertRulesNameExportedMetrics: every dvp_ metric the alert rules
// read is one the plugin exports.
func TestAlertRulesNameExportedMetrics(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join(alertsDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	host := &countingHost{fakeHost: newFakeHost()}
	m := NewMetrics()
	d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: filterHost{host}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	createNetworks(t, d, 1)
	host.drops = map[string]uint64{}
	for _, n := range d.census(t.Context(), false).Networks {
		host.drops[n.Spec.ID] = 1
	}
	m.observeCall("NetworkDriver.CreateNetwork", resultError, time.Millisecond)
	text := scrape(t, m)
	for _, name := range regexp.MustCompile(`\bdvp_[a-z_]+`).FindAllString(string(rules), -1) {
		if !strings.Contains(text, "\n"+name+"{") && !strings.Contains(text, "\n"+name+" ") {
			t.Errorf("the alert rules read %s, which the plugin does not export", name)
		}
	}
}
