package frr_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/frr"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// A router answers vtysh with its configuration applied, and when its test
// ends both daemons are gone and its directory removed; FRR's shared
// directories hold nothing for it.
func TestIntegrationRouterLifecycle(t *testing.T) {
	frr.Require(t)
	ns := testns.New(t)
	id, peer := netip.MustParseAddr("198.18.80.1"), netip.MustParseAddr("198.18.80.2")
	var dir string
	var pids map[string]int
	t.Run("running", func(t *testing.T) {
		r := frr.Start(t, ns, frr.EVPNConfig(id, 65001, peer))
		dir, pids = r.Dir, r.Pids()
		if len(pids) != 2 || pids["zebra"] == 0 || pids["bgpd"] == 0 {
			t.Fatalf("pids %v, want zebra and bgpd", pids)
		}
		sum, err := r.EVPNSummary()
		if err != nil {
			t.Fatal(err)
		}
		if sum.AS != 65001 || sum.RouterID != id.String() {
			t.Fatalf("summary %+v, want AS 65001 and router ID %s", sum, id)
		}
		if p, ok := sum.Peers[peer.String()]; !ok || p.State == "Established" {
			t.Fatalf("peer %s: %+v, want configured and not established (nothing answers)", peer, p)
		}
		vnis, err := r.EVPNVNIs()
		if err != nil || len(vnis) != 0 {
			t.Fatalf("VNIs %v, %v; want none (no vxlan in the namespace)", vnis, err)
		}
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := r.Stop(); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
	})
	for name, pid := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.HasPrefix(cmdline, []byte("/usr/lib/frr/"+name)) {
			t.Errorf("%s (pid %d) still runs", name, pid)
		}
		if _, err := os.Stat(fmt.Sprintf("/var/tmp/frr/%s.%d", name, pid)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("/var/tmp/frr/%s.%d left behind: %v", name, pid, err)
		}
	}
	for _, p := range []string{dir, "/etc/frr/" + ns.Name, "/var/run/frr/" + ns.Name} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}
