package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker"
	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/ipam"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/vtepfilter"
)

// servePluginStatus answers Plugin.Status on a unix socket with rep.
func servePluginStatus(t *testing.T, rep *docker.StatusReport) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "p.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/"+docker.StatusCall {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(rep)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// The exit code says whether anything drifted; the table names it, the
// JSON carries it.
func TestStatusExitCodeAndOutput(t *testing.T) {
	rep := &docker.StatusReport{Source: "plugin", Networks: []linuxhost.NetworkStatus{{
		ID: "0123456789abcdef", Kind: fabric.KindBridge, VNI: 40,
		Links:     []linuxhost.ItemStatus{{Name: "vx_0123456789ab", Role: "vxlan"}, {Name: "br_0123456789ab", Role: "bridge"}},
		Endpoints: []linuxhost.ItemStatus{{Name: "e1", Role: "veth vhe1"}},
	}}}
	sock := servePluginStatus(t, rep)
	var out, errOut bytes.Buffer
	if code := runStatus([]string{"-socket", sock}, &out, &errOut); code != statusClean || !strings.Contains(out.String(), "1 networks, 1 endpoints, 0 swarm nodes; 0 drifted") {
		t.Fatalf("clean: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	rep.Networks[0].Links[0].Drift = []string{"link missing"}
	out.Reset()
	if code := runStatus([]string{"-socket", sock}, &out, &errOut); code != statusDrift || !strings.Contains(out.String(), "vx_0123456789ab  DRIFT: link missing") {
		t.Fatalf("drift: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := runStatus([]string{"-json", "-socket", sock}, &out, &errOut); code != statusDrift {
		t.Fatalf("drift, JSON: exit %d", code)
	}
	var got docker.StatusReport
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Networks[0].Links[0].Drift[0] != "link missing" {
		t.Fatalf("JSON: %v\n%s", err, out.String())
	}
}

// With no plugin answering, status exits 3 and says so, naming the socket
// and the state directory it read: with no store there (a mistyped
// -state-dir), it says that too, and creates nothing.
func TestStatusWithoutPlugin(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "none.sock")
	state := filepath.Join(dir, "state")
	var out, errOut bytes.Buffer
	code := runStatus([]string{"-socket", sock, "-state-dir", state}, &out, &errOut)
	if code != statusNoPlugin || !strings.Contains(out.String(), "read from the state store in "+state) || !strings.Contains(out.String(), "0 networks") ||
		!strings.Contains(errOut.String(), "no plugin answered on "+sock) ||
		!strings.Contains(errOut.String(), "the state directory "+state+" holds no state store (state.db)") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "state*")); len(m) != 0 {
		t.Fatalf("status created %v", m)
	}

	// A socket that something listens on but that answers no plugin
	// call counts as no plugin, too; so does -json.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	out.Reset()
	errOut.Reset()
	code = runStatus([]string{"-json", "-socket", sock, "-state-dir", state}, &out, &errOut)
	var rep docker.StatusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || code != statusNoPlugin || rep.Source != "store" || rep.StateDir != state ||
		!strings.Contains(errOut.String(), "404 Not Found") {
		t.Fatalf("exit %d, %v\n%s%s", code, err, out.String(), errOut.String())
	}
}

// Each network's VTEP filter is one line of the table: its allow-list and
// drop count, off, or unfiltered with the reason; a filter whose rules are
// missing is drift.
func TestStatusVTEPFilterLine(t *testing.T) {
	rep := &docker.StatusReport{Source: "plugin", Networks: []linuxhost.NetworkStatus{
		{ID: "0123456789abcdef", Kind: fabric.KindBridge, VNI: 40, Links: []linuxhost.ItemStatus{{Name: "vx_0123456789ab", Role: "vxlan"}},
			Filter: &linuxhost.FilterStatus{State: linuxhost.FilterOn, Allowed: []netip.Prefix{netip.MustParsePrefix("198.18.40.2/32"),
				netip.MustParsePrefix("198.18.50.0/24")}, Dropped: vtepfilter.Counter{Packets: 15, Bytes: 1170}}},
		{ID: "1123456789abcdef", Kind: fabric.KindBridge, VNI: 41, Links: []linuxhost.ItemStatus{{Name: "vx_1123456789ab", Role: "vxlan"}},
			Filter: &linuxhost.FilterStatus{State: linuxhost.FilterOff}},
		{ID: "2123456789abcdef", Kind: fabric.KindBridge, VNI: 42, Links: []linuxhost.ItemStatus{{Name: "vx_2123456789ab", Role: "vxlan"}},
			Filter: &linuxhost.FilterStatus{State: linuxhost.FilterUnfiltered, Note: "the kernel has no nf_tables"}},
	}}
	var out bytes.Buffer
	writeStatusTable(&out, rep)
	spaced := regexp.MustCompile(` +`)
	for _, want := range []string{
		"vtep filter allow 198.18.40.2,198.18.50.0/24 ok (filtered, 15 packets dropped)",
		"vtep filter - ok (off: every source admitted)",
		"vtep filter - ok (unfiltered: every source admitted: the kernel has no nf_tables)",
	} {
		if !strings.Contains(spaced.ReplaceAllString(out.String(), " "), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	rep.Networks[0].Filter.Drift = []string{"rules missing: every source is admitted"}
	out.Reset()
	writeStatusTable(&out, rep)
	if !strings.Contains(spaced.ReplaceAllString(out.String(), " "), "allow 198.18.40.2,198.18.50.0/24 DRIFT: rules missing") || rep.DriftCount() != 1 {
		t.Errorf("drift of the filter:\n%s", out.String())
	}
}

// The plugins' own membership and a pool's host address each have a line.
func TestStatusMembersAndHostAddress(t *testing.T) {
	rep := &docker.StatusReport{Source: "plugin",
		Members: []docker.MemberStatus{{Name: "198.18.1.2:7947", Advertise: "198.18.1.2", DataPath: "198.18.2.2"},
			{Name: "198.18.1.3:7947", Advertise: "198.18.1.3", DataPath: "198.18.2.3", Departed: true}},
		Pools: []docker.IPAMStatus{{ID: "vxlan-local:198.19.10.0_24", Subnet: "198.19.10.0/24",
			Leases: []ipam.Lease{{Addr: netip.MustParseAddr("198.19.10.1"), Use: ipam.UseGateway}, {Addr: netip.MustParseAddr("198.19.10.77"), Use: ipam.UseHost}}}},
	}
	var out bytes.Buffer
	writeStatusTable(&out, rep)
	for _, want := range []string{
		"membership: 198.18.1.2 (data path 198.18.2.2), 198.18.1.3 (data path 198.18.2.3) departed\n",
		"address pool vxlan-local:198.19.10.0_24: 2 leased, 0 ready, 0 conflicts, host address 198.19.10.77\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
