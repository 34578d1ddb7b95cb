package docker

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker/internal/store"
	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

func TestStoreRoundTripAndRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := st.Load()
	if err != nil || len(empty.Networks) != 0 {
		t.Fatalf("new store: %+v %v", empty, err)
	}
	spec := &fabric.NetworkSpec{ID: "n1", Kind: fabric.KindBridge, VXLAN: vxlan.Config{Name: "vx_n1", VNI: 5, Ageing: vxlan.Ptr(600 * time.Second)}, Bridge: fabric.BridgeSpec{Name: "br_n1", HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, HostGateway: true, ContainerMTU: 1450}
	if err := st.putNetwork(spec); err != nil {
		t.Fatal(err)
	}
	if err := st.putEndpoint("n1", &fabric.Endpoint{ID: "e1", HostIf: "vhe1", MAC: net.HardwareAddr{2, 0x42, 1, 2, 3, 4}, Address: netip.MustParsePrefix("198.19.5.2/24")}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load()
	if err != nil || len(got.Networks) != 1 || !reflect.DeepEqual(got.Networks[0].Spec, spec) || got.Networks[0].Endpoints[0].HostIf != "vhe1" ||
		got.Networks[0].Endpoints[0].MAC.String() != "02:42:01:02:03:04" {
		t.Fatalf("%+v %v", got.Networks[0], err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory mode %v", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(st.Path()); fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v", fi.Mode().Perm())
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// A state.json of version 1 that cannot be trusted stops the start, and
	// is left as it is.
	for _, tc := range []struct{ content, says string }{
		{"{not json", "is corrupt"},
		{`{"version": 2, "networks": []}`, "is of version 2, which this plugin does not know"},
		{`{"networks": []}`, "has no valid version"},
		{`{"version": 1, "networks": [{"spec": null}]}`, "network 0 has no spec or ID"},
	} {
		dir := t.TempDir()
		old := filepath.Join(dir, "state.json")
		if err := os.WriteFile(old, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := openStore(dir); err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "state.json") {
			t.Errorf("%q: %v", tc.content, err)
		}
		if b, _ := os.ReadFile(old); string(b) != tc.content {
			t.Errorf("%q: the state file was rewritten", tc.content)
		}
	}
	// So does a store that is not one, or a record that does not decode.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, store.FileName), []byte("not a database, but a file of some length to be read"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(bad); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("corrupt store: %v", err)
	}
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *store.Tx) error {
		return tx.Put(store.Networks, "n2", map[string]any{"id": "n2", "kind": "tunnel"})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err = openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, _ := NewDriver(Config{Scope: fabric.ScopeLocal, Host: newFakeHost(), store: st})
	if _, err := d.Restore(t.Context()); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), `unknown kind "tunnel"`) {
		t.Errorf("Restore started on a record it cannot read: %v", err)
	}
}

// A state.json written by the plugin before the store (version 1) becomes
// records on first start, and is kept as a backup.
func TestStoreMigratesVersion1(t *testing.T) {
	dir := t.TempDir()
	old, err := os.ReadFile("testdata/state-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if b, err := os.ReadFile(filepath.Join(dir, store.V1BackupName)); err != nil || !bytes.Equal(b, old) {
		t.Fatalf("backup: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state.json still there: %v", err)
	}
	got, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Networks) != 4 || len(got.Nodes) != 1 || got.Nodes[0].Address != "198.18.99.2" {
		t.Fatalf("%d networks, nodes %+v", len(got.Networks), got.Nodes)
	}
	br, mv, vlan, iso := got.Networks[0], got.Networks[1], got.Networks[2].Spec, got.Networks[3].Spec
	v := br.Spec.VXLAN
	if br.Spec.Kind != fabric.KindBridge || v.VNI != 42 || v.Device != "eth0" || *v.Ageing != 600*time.Second || *v.Learning || v.SrcPorts != (vxlan.PortRange{Low: 5000, High: 6000}) ||
		v.HardwareAddr.String() != "02:00:00:00:00:02" || br.Spec.Bridge.HardwareAddr.String() != "02:00:00:00:00:01" || !br.Spec.HostGateway ||
		fmt.Sprint(br.Spec.Peers) != "[198.18.0.2 198.18.0.3]" || v.Alias != fabric.OwnerMark(br.Spec.ID) || !v.Up || br.Spec.ContainerMTU != 1450 {
		t.Errorf("bridge network: %+v", br.Spec)
	}
	if len(br.Endpoints) != 1 || br.Endpoints[0].AddressIPv6.String() != "fd00:1::2/64" || br.Endpoints[0].MAC.String() != "02:42:c6:13:01:02" {
		t.Errorf("bridge endpoints: %+v", br.Endpoints[0])
	}
	if mv.Spec.Kind != fabric.KindMacvlan || mv.Spec.MacvlanMode != rtlink.MacvlanModePrivate || mv.Spec.VXLAN.Device != "eth1" || mv.Spec.ContainerMTU != 8950 || mv.Endpoints[0].MAC.String() != "02:42:c6:13:02:02" {
		t.Errorf("macvlan network: %+v %+v", mv.Spec, mv.Endpoints)
	}
	if vlan.Kind != fabric.KindParent || vlan.Parent.Name != "eth0.65" || vlan.Parent.VLAN == nil || *vlan.Parent.VLAN != (fabric.VLANParent{Master: "eth0", ID: 65}) {
		t.Errorf("802.1Q parent network: %+v", vlan.Parent)
	}
	if !iso.Parent.Isolated || iso.Parent.Name != "pa_444444444444" || iso.MacvlanMode != rtlink.MacvlanModeBridge {
		t.Errorf("isolated network: %+v", iso)
	}
}

// A driver restarted on the same state knows its networks and endpoints:
// a container that was running can leave and be deleted, a new one can
// join, and the networks delete cleanly.
func TestRestartFromState(t *testing.T) {
	dir := t.TempDir()
	store := newStore(t, dir)
	host := newFakeHost()
	d1, _ := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, store: store})
	srv1 := newServerFor(t, d1)
	post(t, srv1, "NetworkDriver.CreateNetwork", `{"NetworkID":"net1","Options":{"com.docker.network.generic":{"VxlanId":"5"}},"IPv4Data":[{"Gateway":"198.19.5.1/24"}]}`)
	post(t, srv1, "NetworkDriver.CreateEndpoint", `{"NetworkID":"net1","EndpointID":"ep1aaaaaaaaaaa","Interface":{"Address":"198.19.5.2/24"}}`)
	post(t, srv1, "NetworkDriver.DiscoverNew", `{"DiscoveryType":1,"DiscoveryData":{"Address":"198.18.99.2","BindAddress":"","Self":false}}`)

	// Restart: a new driver, same store; the host kept its links.
	host.calls = nil
	d2, _ := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, store: store})
	rep, err := d2.Restore(t.Context())
	if err != nil || rep.Networks != 1 || len(rep.Failed) != 0 || len(rep.Orphans) != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	if len(host.calls) != 1 || host.calls[0] != "CreateNetwork vx_net1" {
		t.Fatalf("restore asked the host for %v, want the network ensured once", host.calls)
	}
	if len(d2.nodes) != 1 {
		t.Fatalf("swarm peers not restored: %v", d2.nodes)
	}
	srv2 := newServerFor(t, d2)
	for _, c := range []struct{ call, body, want string }{
		{"NetworkDriver.Join", `{"NetworkID":"net1","EndpointID":"ep1aaaaaaaaaaa"}`, `"SrcName":"vcep1aaaaaaaaa"`},
		{"NetworkDriver.Leave", `{"NetworkID":"net1","EndpointID":"ep1aaaaaaaaaaa"}`, `{}`},
		{"NetworkDriver.DeleteEndpoint", `{"NetworkID":"net1","EndpointID":"ep1aaaaaaaaaaa"}`, `{}`},
		{"NetworkDriver.CreateEndpoint", `{"NetworkID":"net1","EndpointID":"ep2aaaaaaaaaaa","Interface":{"Address":"198.19.5.3/24"}}`, `MacAddress`},
		{"NetworkDriver.DeleteEndpoint", `{"NetworkID":"net1","EndpointID":"ep2aaaaaaaaaaa"}`, `{}`},
		{"NetworkDriver.DeleteNetwork", `{"NetworkID":"net1"}`, `{}`},
	} {
		if _, got := post(t, srv2, c.call, c.body); !strings.Contains(got, c.want) {
			t.Fatalf("%s after restart: %s", c.call, got)
		}
	}
	final, _ := store.Load()
	if len(final.Networks) != 0 {
		t.Fatalf("state keeps %d networks", len(final.Networks))
	}
}

// Links of networks the state does not know are reported, and deleted
// only when asked.
func TestRestoreOrphans(t *testing.T) {
	for _, clean := range []bool{false, true} {
		store := newStore(t, t.TempDir())
		host := newFakeHost()
		host.networks["ghost"] = &fabric.NetworkSpec{ID: "ghost", VXLAN: vxlanCfg("vx_ghost")}
		d, _ := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, store: store, CleanOrphans: clean})
		rep, err := d.Restore(t.Context())
		if err != nil || len(rep.Orphans) != 1 || rep.Orphans[0].Name != "vx_ghost" || rep.Cleaned != clean {
			t.Fatalf("clean=%v: %+v %v", clean, rep, err)
		}
		if _, still := host.networks["ghost"]; still == clean {
			t.Fatalf("clean=%v: orphan still there: %v", clean, still)
		}
	}
}

// When the state cannot be saved, what was just made is unmade: a network
// the state file does not list must not exist.
func TestSaveFailureRollsBack(t *testing.T) {
	store := newStore(t, t.TempDir())
	host := newFakeHost()
	d, _ := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, store: store})
	if err := store.Close(); err != nil { // every commit now fails
		t.Fatal(err)
	}
	srv := newServerFor(t, d)
	_, got := post(t, srv, "NetworkDriver.CreateNetwork", `{"NetworkID":"net1","Options":{"com.docker.network.generic":{"VxlanId":"5"}}}`)
	if !strings.Contains(got, "saving state") {
		t.Fatal(got)
	}
	if len(host.networks) != 0 || len(d.networks) != 0 {
		t.Fatalf("left: host %v, state %v", host.networks, d.networks)
	}
}

// After a reboot the state still lists endpoints whose containers are gone;
// dockerd deletes the network without deleting them first. They go with it.
func TestDeleteNetworkWithStaleEndpoints(t *testing.T) {
	store := newStore(t, t.TempDir())
	host := newFakeHost()
	d1, _ := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, store: store})
	srv1 := newServerFor(t, d1)
	post(t, srv1, "NetworkDriver.CreateNetwork", `{"NetworkID":"net1","Options":{"com.docker.network.generic":{"VxlanId":"5"}}}`)
	post(t, srv1, "NetworkDriver.CreateEndpoint", `{"NetworkID":"net1","EndpointID":"stale00000000a","Interface":{"Address":"198.19.5.2/24"}}`)
	d2, _ := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, store: store})
	if _, err := d2.Restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, got := post(t, newServerFor(t, d2), "NetworkDriver.DeleteNetwork", `{"NetworkID":"net1"}`); got != `{}` {
		t.Fatal(got)
	}
	if len(host.endpoints) != 0 || len(host.networks) != 0 {
		t.Fatalf("left: %v %v", host.endpoints, host.networks)
	}
	if st, _ := store.Load(); len(st.Networks) != 0 {
		t.Fatalf("state keeps %d networks", len(st.Networks))
	}
}

// newStore opens a store that is closed when the test ends.
func newStore(t *testing.T, dir string) *stateStore {
	t.Helper()
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
