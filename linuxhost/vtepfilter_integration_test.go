package linuxhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/vtepfilter"
	"golang.org/x/sys/unix"
)

// filterHost is a host that filters by default, in ns, closed at cleanup.
func filterHost(t *testing.T, ns *testns.NS) *Host {
	t.Helper()
	h := New(ns.Dial(), WithVTEPFilter(true))
	t.Cleanup(func() { h.Close() })
	if h.filter.ready(t.Context()) == nil {
		testns.SkipMissingFeature(t, "nf_tables", h.filter.unavailable)
	}
	return h
}

// network resolves a bridge-mode network of VNI vni on ul0 with opts.
func network(t *testing.T, h *Host, id string, vni int, opts map[string]string) *fabric.NetworkSpec {
	t.Helper()
	o := map[string]string{"VxlanId": fmt.Sprint(vni)}
	maps.Copy(o, opts)
	spec, err := fabric.Resolve(t.Context(), h, o, fabric.ResolveConfig{ID: id, Scope: fabric.ScopeLocal, DefaultVTEP: []string{"ul0"},
		Gateways: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("198.19.%d.1/24", vni%250))}})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// readTable reads the table of ns with a connection of its own: the
// networks by name.
func readTable(t *testing.T, ns *testns.NS) map[string]vtepfilter.State {
	t.Helper()
	states, err := vtepfilter.ReadNetNS(t.Context(), ns.Open().Fd())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]vtepfilter.State{}
	for _, s := range states {
		out[s.Name] = s
	}
	return out
}

func prefixes(ss ...string) []netip.Prefix {
	out := []netip.Prefix{}
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// A network's filter follows the network: made with it from its Peers
// (a swarm network's spec carries the swarm's nodes there), a unicast or
// multicast Group and VtepAllow; AddPeer and RemovePeer change the
// allow-list; VtepFilter=false makes none; status shows it; deleting the
// network removes its rules, and the last one the table. A host started
// again (Reconcile) builds the table again from the networks it is given,
// keeping the drop counters, and drops the rules of networks it is not
// given.
func TestIntegrationVTEPFilterFollowsNetworks(t *testing.T) {
	ns := underlayNS(t)
	baseline := ns.Snapshot()
	h := filterHost(t, ns)
	ctx := t.Context()
	peers := network(t, h, "f1f1f1f1f1f1f1f1", 301, map[string]string{"Peers": "198.18.4.2,198.18.4.3"})
	group := network(t, h, "f2f2f2f2f2f2f2f2", 302, map[string]string{"Group": "239.1.1.9", "VtepAllow": "198.18.99.0/24"})
	mcast := network(t, h, "f3f3f3f3f3f3f3f3", 303, map[string]string{"Group": "239.1.1.10"})
	off := network(t, h, "f4f4f4f4f4f4f4f4", 304, map[string]string{"VtepFilter": "false", "Peers": "198.18.4.2"})
	unicast := network(t, h, "f5f5f5f5f5f5f5f5", 305, map[string]string{"Group": "198.18.4.5", "Port": "8472"})
	for _, s := range []*fabric.NetworkSpec{peers, group, mcast, off, unicast} {
		if err := h.CreateNetwork(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]netip.Prefix{
		"df1f1f1f1f1f1": prefixes("198.18.4.2/31"),
		"df2f2f2f2f2f2": prefixes("198.18.99.0/24"),
		"df3f3f3f3f3f3": prefixes("198.18.4.0/24"), // ul0's prefix
		"df5f5f5f5f5f5": prefixes("198.18.4.5/32"),
	}
	check := func(what string) map[string]vtepfilter.State {
		t.Helper()
		got := readTable(t, ns)
		if len(got) != len(want) {
			t.Fatalf("%s: the table holds %v, want %v", what, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		for name, allowed := range want {
			if s := got[name]; !slices.Equal(s.Allowed, allowed) || s.Rules != 2 {
				t.Errorf("%s: %s: %+v, want allowed %v", what, name, s, allowed)
			}
		}
		return got
	}
	got := check("made")
	if s := got["df5f5f5f5f5f5"]; s.Port != 8472 || s.VNI != 305 {
		t.Errorf("unicast Group network: port %d VNI %d, want 8472 305", s.Port, s.VNI)
	}

	if err := h.AddPeer(ctx, peers, netip.MustParseAddr("198.18.4.9")); err != nil {
		t.Fatal(err)
	}
	want["df1f1f1f1f1f1"] = prefixes("198.18.4.2/31", "198.18.4.9/32")
	check("peer added")
	if err := h.RemovePeer(ctx, peers, netip.MustParseAddr("198.18.4.9")); err != nil {
		t.Fatal(err)
	}
	want["df1f1f1f1f1f1"] = prefixes("198.18.4.2/31")
	check("peer removed")

	st := h.CheckNetwork(ctx, peers, nil)
	if st.Err() != nil || st.Filter == nil || st.Filter.State != FilterOn || !slices.Equal(st.Filter.Allowed, prefixes("198.18.4.2/31")) {
		t.Errorf("status of a filtered network: %+v %+v (%v)", st.Filter, st.Links, st.Err())
	}
	// Rules removed behind the host's back are drift; making the network
	// again puts them back.
	other, err := vtepfilter.New(vtepfilter.WithNetNSFd(ns.Open().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Remove(ctx, "df1f1f1f1f1f1"); err != nil {
		t.Fatal(err)
	}
	if err := h.CheckNetwork(ctx, peers, nil).Err(); err == nil || !strings.Contains(err.Error(), "vtep filter inet docker_vxlan_plugin df1f1f1f1f1f1: rules missing") {
		t.Errorf("rules removed: %v", err)
	}
	if err := h.CreateNetwork(ctx, peers); err != nil {
		t.Fatal(err)
	}
	if err := h.CheckNetwork(ctx, peers, nil).Err(); err != nil {
		t.Errorf("made again: %v", err)
	}
	if st := h.CheckNetwork(ctx, off, nil); st.Filter == nil || st.Filter.State != FilterOff {
		t.Errorf("status of VtepFilter=false: %+v", st.Filter)
	}
	if c, err := h.VTEPFilterDropped(ctx, peers); err != nil || c.Packets != 0 {
		t.Errorf("VTEPFilterDropped: %v %v", c, err)
	}
	// The metrics read the same counters, all networks in one listing: a
	// filtered network has its entry, one with the filter off none.
	if drops, err := h.FilterDrops(ctx, []*fabric.NetworkSpec{peers, off}); err != nil || len(drops) != 1 || drops[peers.ID] != 0 {
		t.Errorf("FilterDrops = %v, %v; want only %s, with 0", drops, err, peers.ID)
	}

	// A start: a new host given the networks but mcast, whose rules go.
	h2 := filterHost(t, ns)
	rec, err := h2.Reconcile(ctx, []*fabric.NetworkSpec{peers, group, off, unicast})
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range rec.Failed {
		if err != nil {
			t.Errorf("network %d not brought back: %v", i, err)
		}
	}
	delete(want, "df3f3f3f3f3f3")
	check("after a restart")
	if err := h2.DeleteNetwork(ctx, mcast, false); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*fabric.NetworkSpec{peers, group, off} {
		if err := h2.DeleteNetwork(ctx, s, false); err != nil {
			t.Fatal(err)
		}
	}
	want = map[string][]netip.Prefix{"df5f5f5f5f5f5": prefixes("198.18.4.5/32")}
	check("all but one deleted")
	if err := h2.DeleteNetwork(ctx, unicast, false); err != nil {
		t.Fatal(err)
	}
	if out, _ := ns.Exec("nft", "list", "tables"); out != "" {
		t.Errorf("tables left after the last network: %s", out)
	}
	drain(t, h)
	drain(t, h2)
	if got := ns.Snapshot(); got != baseline {
		t.Fatalf("left:\n%s", got)
	}
}

// An EVPN network admits the remote VTEPs its routing daemon installs as
// flood entries, followed as they come and go.
func TestIntegrationVTEPFilterFollowsEVPNFloodEntries(t *testing.T) {
	ns := underlayNS(t)
	h := filterHost(t, ns)
	ctx := t.Context()
	spec := network(t, h, "e1e1e1e1e1e1e1e1", 311, map[string]string{"ControlPlane": "evpn"})
	if err := h.CreateNetwork(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.DeleteNetwork(ctx, spec, false)
		_ = h.Drain(ctx)
	})
	allowed := func(want ...string) {
		t.Helper()
		testns.Eventually(t, 10*time.Second, 50*time.Millisecond, "the EVPN network's allow-list", func() error {
			got := readTable(t, ns)["de1e1e1e1e1e1"].Allowed
			if !slices.Equal(got, prefixes(want...)) {
				return fmt.Errorf("allowed %v, want %v", got, want)
			}
			return nil
		})
	}
	// fdb changes the flood entry to remote, as a routing daemon does.
	fdb := func(op, remote string, flags ...string) {
		t.Helper()
		args := append([]string{"-n", ns.Name, "fdb", op, "00:00:00:00:00:00", "dev", spec.VXLAN.Name, "dst", remote, "self"}, flags...)
		if _, err := testns.Run("bridge", args...); err != nil {
			t.Fatal(err)
		}
	}
	allowed()
	fdb("append", "198.18.4.7", "permanent")
	allowed("198.18.4.7/32")
	fdb("append", "198.18.4.8", "permanent")
	allowed("198.18.4.7/32", "198.18.4.8/32")
	fdb("del", "198.18.4.7")
	allowed("198.18.4.8/32")
}

// Where the kernel has no nf_tables, the host says so once and goes on
// unfiltered: networks are made, status says they are unfiltered and why,
// and no table is made. (The kernel here has nf_tables: the filter's
// opening is made to fail as such a kernel's does.)
func TestIntegrationVTEPFilterUnsupported(t *testing.T) {
	ns := underlayNS(t)
	var log bytes.Buffer
	h := New(ns.Dial(), WithVTEPFilter(true), WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	t.Cleanup(func() { h.Close() })
	h.filter.open = func(...vtepfilter.Option) (*vtepfilter.Filter, error) {
		return nil, fmt.Errorf("vtepfilter: open: %w: %w", vtepfilter.ErrUnsupported, unix.EPROTONOSUPPORT)
	}
	ctx := t.Context()
	var specs []*fabric.NetworkSpec
	for i, id := range []string{"a1a1a1a1a1a1a1a1", "a2a2a2a2a2a2a2a2"} {
		spec := network(t, h, id, 320+i, map[string]string{"Peers": "198.18.4.2"})
		if err := h.CreateNetwork(ctx, spec); err != nil {
			t.Fatalf("a network on a kernel without nf_tables: %v", err)
		}
		specs = append(specs, spec)
	}
	st := h.CheckNetwork(ctx, specs[0], nil)
	if st.Err() != nil || st.Filter == nil || st.Filter.State != FilterUnfiltered || !strings.Contains(st.Filter.Note, "nf_tables") {
		t.Errorf("status: %+v (%v)", st.Filter, st.Err())
	}
	if n := strings.Count(log.String(), "msg=\"the kernel has no nf_tables"); n != 1 {
		t.Errorf("said %d times, want once:\n%s", n, log.String())
	}
	if _, err := h.VTEPFilterDropped(ctx, specs[0]); !errors.Is(err, vtepfilter.ErrNotFound) {
		t.Errorf("VTEPFilterDropped: %v, want ErrNotFound", err)
	}
	if drops, err := h.FilterDrops(ctx, specs); err != nil || len(drops) != 0 {
		t.Errorf("FilterDrops on a kernel without nf_tables = %v, %v; want none", drops, err)
	}
	if got := readTable(t, ns); len(got) != 0 {
		t.Errorf("a table was made: %+v", got)
	}
	for _, spec := range specs {
		if err := h.DeleteNetwork(ctx, spec, false); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, h)
}
