package docker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/vtepfilter"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// fakeHost records what the driver asks of the machine. Links are names in
// a map; failAt makes the named operation fail.
type fakeHost struct {
	mu            sync.Mutex
	mtu           map[string]int // existing devices and their MTUs
	addrs         map[string][]netip.Addr
	networks      map[string]*fabric.NetworkSpec
	endpoints     map[string]*fabric.Endpoint
	calls         []string
	failAt        string
	peers         map[string][]netip.Addr // FDB peers by vxlan link name
	hostAddresses []netip.Prefix          // AddHostAddress's, in order
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		mtu:       map[string]int{"eth0": 1500, "vxu1": 1500, "jumbo": 9000},
		addrs:     map[string][]netip.Addr{"eth0": {netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fd00:1::1"), netip.MustParseAddr("198.18.1.1")}},
		networks:  map[string]*fabric.NetworkSpec{},
		endpoints: map[string]*fabric.Endpoint{},
		peers:     map[string][]netip.Addr{},
	}
}

func (f *fakeHost) record(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op)
	if f.failAt == op {
		return fmt.Errorf("injected failure in %s", op)
	}
	return nil
}

func (f *fakeHost) LinkMTU(_ context.Context, name string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.mtu[name]
	if !ok {
		return 0, fmt.Errorf("get link %s: %w", name, vxlan.ErrNotFound)
	}
	return m, nil
}

// LinkAddrs returns the addresses of addrs for an existing device.
func (f *fakeHost) LinkAddrs(_ context.Context, name string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.mtu[name]; !ok {
		return nil, fmt.Errorf("get link %s: %w", name, vxlan.ErrNotFound)
	}
	return f.addrs[name], nil
}

func (f *fakeHost) CreateNetwork(_ context.Context, s *fabric.NetworkSpec) error {
	if err := f.record("CreateNetwork " + s.VXLAN.Name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.networks[s.ID] = s
	for _, p := range s.Peers {
		if !slices.Contains(f.peers[s.VXLAN.Name], p) {
			f.peers[s.VXLAN.Name] = append(f.peers[s.VXLAN.Name], p)
		}
	}
	return nil
}

func (f *fakeHost) DeleteNetwork(_ context.Context, s *fabric.NetworkSpec, _ bool) error {
	if err := f.record("DeleteNetwork " + s.VXLAN.Name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.networks, s.ID)
	delete(f.peers, s.VXLAN.Name)
	return nil
}

func (f *fakeHost) CreateEndpoint(_ context.Context, s *fabric.NetworkSpec, ep *fabric.Endpoint, _ *linuxhost.ContainerNS) error {
	if err := f.record("CreateEndpoint " + ep.HostIf); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endpoints[ep.ID] = ep
	f.mtu[ep.HostIf] = s.ContainerMTU
	return nil
}

func (f *fakeHost) DeleteEndpoint(_ context.Context, s *fabric.NetworkSpec, ep *fabric.Endpoint) error {
	if err := f.record("DeleteEndpoint " + ep.HostIf); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.endpoints, ep.ID)
	delete(f.mtu, ep.HostIf)
	return nil
}

// Reconcile makes every network of specs (CreateNetwork, recorded) and
// reports the fake's other networks as orphans.
func (f *fakeHost) Reconcile(ctx context.Context, specs []*fabric.NetworkSpec) (*linuxhost.Reconciliation, error) {
	rec := &linuxhost.Reconciliation{Failed: make([]error, len(specs))}
	known := map[string]bool{}
	for i, s := range specs {
		known[s.ID] = true
		rec.Failed[i] = f.CreateNetwork(ctx, s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, s := range f.networks {
		if !known[id] {
			rec.Orphans = append(rec.Orphans, linuxhost.OwnedLink{Name: s.VXLAN.Name, Kind: "vxlan", NetworkID: id})
		}
	}
	return rec, nil
}

// CheckNetwork reports a network the fake host does not hold as missing.
func (f *fakeHost) CheckNetwork(_ context.Context, s *fabric.NetworkSpec, eps []*fabric.Endpoint) linuxhost.NetworkStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := linuxhost.NetworkStatus{ID: s.ID, Kind: s.Kind, VNI: s.VXLAN.VNI, Links: []linuxhost.ItemStatus{{Name: s.VXLAN.Name, Role: "vxlan"}}}
	if f.networks[s.ID] == nil {
		st.Links[0].Drift = []string{"link missing"}
	}
	for _, ep := range eps {
		it := linuxhost.ItemStatus{Name: ep.ID, Role: "veth " + ep.HostIf}
		if f.endpoints[ep.ID] == nil {
			it.Drift = []string{"host link " + ep.HostIf + " missing"}
		}
		st.Endpoints = append(st.Endpoints, it)
	}
	return st
}

func (f *fakeHost) DeleteOwnedLink(_ context.Context, l linuxhost.OwnedLink) error {
	if err := f.record("DeleteOwnedLink " + l.Name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.networks, l.NetworkID)
	return nil
}

func (f *fakeHost) AddPeer(_ context.Context, s *fabric.NetworkSpec, p netip.Addr) error {
	if err := f.record("AddPeer " + s.VXLAN.Name + " " + p.String()); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.peers[s.VXLAN.Name], p) {
		f.peers[s.VXLAN.Name] = append(f.peers[s.VXLAN.Name], p)
	}
	return nil
}

func (f *fakeHost) RemovePeer(_ context.Context, s *fabric.NetworkSpec, p netip.Addr) error {
	if err := f.record("RemovePeer " + s.VXLAN.Name + " " + p.String()); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers[s.VXLAN.Name] = slices.DeleteFunc(f.peers[s.VXLAN.Name], func(q netip.Addr) bool { return q == p })
	return nil
}

// VTEPFilterDropped: the fake host filters nothing.
func (f *fakeHost) VTEPFilterDropped(_ context.Context, s *fabric.NetworkSpec) (vtepfilter.Counter, error) {
	return vtepfilter.Counter{}, fmt.Errorf("network %s: %w", s.ID, vtepfilter.ErrNotFound)
}

// peersOf returns the FDB peers of a vxlan link, sorted, as text.
func (f *fakeHost) peersOf(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ps := slices.Clone(f.peers[name])
	slices.SortFunc(ps, netip.Addr.Compare)
	return fmt.Sprint(ps)
}

// newTestServer serves a driver over a fake host.
func newTestServer(t *testing.T, scope, vtepdev string) (*httptest.Server, *Driver, *fakeHost) {
	t.Helper()
	host := newFakeHost()
	d, err := NewDriver(Config{Scope: scope, VTEPDevice: vtepdev, Host: host})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(d))
	t.Cleanup(srv.Close)
	return srv, d, host
}

// newServerFor serves d.
func newServerFor(t *testing.T, d *Driver) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(d))
	t.Cleanup(srv.Close)
	return srv
}

func vxlanCfg(name string) vxlan.Config { return vxlan.Config{Name: name} }

// post sends body to /call the way dockerd does: POST, its Accept header,
// no Content-Type.
func post(t *testing.T, srv *httptest.Server, call, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/"+call, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.docker.plugins.v1.2+json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// fixture is one recorded request: the call and its body.
type fixture struct {
	file, call, body string
}

func loadFixtures(t *testing.T, dir string) []fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", dir, err)
	}
	sort.Strings(files)
	var out []fixture
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(filepath.Base(f), ".json")
		out = append(out, fixture{file: base, call: base[4:], body: string(b)})
	}
	return out
}

// AddHostAddress records the host address on the fake bridge.
func (f *fakeHost) AddHostAddress(_ context.Context, spec *fabric.NetworkSpec, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hostAddresses = append(f.hostAddresses, p)
	return nil
}

// OpenSegment opens nothing: the fake host does not probe.
func (f *fakeHost) OpenSegment(*fabric.NetworkSpec, linuxhost.Guard) (*linuxhost.Segment, error) {
	return nil, nil
}
