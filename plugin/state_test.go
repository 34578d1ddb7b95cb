package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreRoundTripAndRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	st, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := st.Load()
	if err != nil || empty.Version != StateVersion || len(empty.Networks) != 0 {
		t.Fatalf("missing file: %+v %v", empty, err)
	}
	want := &State{Version: StateVersion, Networks: []*NetworkState{{Spec: &NetworkSpec{ID: "n1", Kind: KindBridge}, Endpoints: []*Endpoint{{ID: "e1", HostIf: "vhe1"}}}}}
	if err := st.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load()
	if err != nil || len(got.Networks) != 1 || got.Networks[0].Spec.ID != "n1" || got.Networks[0].Endpoints[0].HostIf != "vhe1" {
		t.Fatalf("%+v %v", got, err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, ".state-*")); len(files) != 0 {
		t.Fatalf("temporary files left: %v", files)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory mode %v", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(st.Path()); fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v", fi.Mode().Perm())
	}
	for _, tc := range []struct{ content, says string }{
		{"{not json", "is corrupt"},
		{`{"version": 2, "networks": []}`, "is of version 2, newer than this plugin's 1"},
		{`{"networks": []}`, "has no valid version"},
		{`{"version": 1, "networks": [{"spec": null}]}`, "network 0 has no spec or ID"},
	} {
		if err := os.WriteFile(st.Path(), []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Load(); err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), st.Path()) {
			t.Errorf("%q: %v", tc.content, err)
		}
		d, _ := NewDriver(Config{Scope: ScopeLocal, Host: newFakeHost(), Store: st})
		if _, err := d.Restore(t.Context()); err == nil {
			t.Errorf("%q: Restore started on state it cannot trust", tc.content)
		}
		if b, _ := os.ReadFile(st.Path()); string(b) != tc.content {
			t.Errorf("%q: the state file was rewritten", tc.content)
		}
	}
}

// A driver restarted on the same state knows its networks and endpoints:
// a container that was running can leave and be deleted, a new one can
// join, and the networks delete cleanly.
func TestRestartFromState(t *testing.T) {
	dir := t.TempDir()
	store, _ := NewStore(dir)
	host := newFakeHost()
	d1, _ := NewDriver(Config{Scope: ScopeLocal, Host: host, Store: store})
	srv1 := newServerFor(t, d1)
	post(t, srv1, "NetworkDriver.CreateNetwork", `{"NetworkID":"net1","Options":{"com.docker.network.generic":{"VxlanId":"5"}},"IPv4Data":[{"Gateway":"198.19.5.1/24"}]}`)
	post(t, srv1, "NetworkDriver.CreateEndpoint", `{"NetworkID":"net1","EndpointID":"ep1aaaaaaaaaaa","Interface":{"Address":"198.19.5.2/24"}}`)
	post(t, srv1, "NetworkDriver.DiscoverNew", `{"DiscoveryType":1,"DiscoveryData":{"Address":"198.18.99.2","BindAddress":"","Self":false}}`)

	// Restart: a new driver, same store; the host kept its links.
	host.calls = nil
	d2, _ := NewDriver(Config{Scope: ScopeLocal, Host: host, Store: store})
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
		store, _ := NewStore(t.TempDir())
		host := newFakeHost()
		host.networks["ghost"] = &NetworkSpec{ID: "ghost", VXLAN: vxlanCfg("vx_ghost")}
		d, _ := NewDriver(Config{Scope: ScopeLocal, Host: host, Store: store, CleanOrphans: clean})
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
	dir := filepath.Join(t.TempDir(), "state")
	store, _ := NewStore(dir)
	host := newFakeHost()
	d, _ := NewDriver(Config{Scope: ScopeLocal, Host: host, Store: store})
	if err := os.RemoveAll(dir); err != nil {
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
	store, _ := NewStore(t.TempDir())
	host := newFakeHost()
	d1, _ := NewDriver(Config{Scope: ScopeLocal, Host: host, Store: store})
	srv1 := newServerFor(t, d1)
	post(t, srv1, "NetworkDriver.CreateNetwork", `{"NetworkID":"net1","Options":{"com.docker.network.generic":{"VxlanId":"5"}}}`)
	post(t, srv1, "NetworkDriver.CreateEndpoint", `{"NetworkID":"net1","EndpointID":"stale00000000a","Interface":{"Address":"198.19.5.2/24"}}`)
	d2, _ := NewDriver(Config{Scope: ScopeLocal, Host: host, Store: store})
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
