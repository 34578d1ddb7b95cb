package docker

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

// The IPAM protocol as dockerd speaks it, on a host that does not probe:
// pools, the gateway, containers' and auxiliary addresses, errors in the
// field the IPAM protocol reads, and leases kept across a restart.
func TestIPAMProtocol(t *testing.T) {
	dir := t.TempDir()
	host := newFakeHost()
	d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServerFor(t, d)
	for call, want := range map[string]string{
		"IpamDriver.GetCapabilities":         `{"RequiresMACAddress":true}`,
		"IpamDriver.GetDefaultAddressSpaces": `{"LocalDefaultAddressSpace":"vxlan-local","GlobalDefaultAddressSpace":"vxlan-global"}`,
	} {
		if _, got := post(t, srv, call, `{}`); got != want {
			t.Errorf("%s = %s, want %s", call, got, want)
		}
	}
	for body, want := range map[string]string{
		`{"AddressSpace":"vxlan-local"}`:                                   "--subnet is required",
		`{"AddressSpace":"vxlan-global","Pool":"198.18.70.0/24"}`:          "swarm (global-scope) networks keep Docker's own address allocation",
		`{"AddressSpace":"other","Pool":"198.18.70.0/24"}`:                 `address space "other": accepted: vxlan-local`,
		`{"AddressSpace":"vxlan-local","Pool":"198.18.70.0/33"}`:           `subnet "198.18.70.0/33": not a prefix`,
		`{"AddressSpace":"vxlan-local","Pool":"fd00:70::/64"}`:             "not an IPv4 subnet",
		`{"AddressSpace":"vxlan-local","Pool":"198.18.70.0/24","V6":true}`: "not an IPv6 subnet",
	} {
		_, got := post(t, srv, "IpamDriver.RequestPool", body)
		var resp struct{ Err, Error string }
		if err := json.Unmarshal([]byte(got), &resp); err != nil || !strings.Contains(resp.Error, want) || resp.Err != resp.Error {
			t.Errorf("RequestPool %s = %s; want Error (and Err) containing %q", body, got, want)
		}
	}
	_, got := post(t, srv, "IpamDriver.RequestPool", `{"AddressSpace":"vxlan-local","Pool":"198.18.70.0/24","SubPool":"198.18.70.128/25"}`)
	if got != `{"PoolID":"vxlan-local:198.18.70.0_24","Pool":"198.18.70.0/24","Data":null}` {
		t.Fatalf("RequestPool = %s", got)
	}
	if _, got := post(t, srv, "IpamDriver.RequestPool", `{"AddressSpace":"vxlan-local","Pool":"198.18.70.0/23"}`); !strings.Contains(got, "overlaps the subnet 198.18.70.0/24") {
		t.Errorf("an overlapping pool: %s", got)
	}
	pool := `"PoolID":"vxlan-local:198.18.70.0_24"`
	if _, got := post(t, srv, "IpamDriver.RequestAddress", `{`+pool+`,"Options":{"RequestAddressType":"com.docker.network.gateway"}}`); got != `{"Address":"198.18.70.1/24","Data":null}` {
		t.Errorf("gateway = %s", got)
	}
	if _, got := post(t, srv, "IpamDriver.RequestAddress", `{`+pool+`,"Address":"198.18.70.5"}`); got != `{"Address":"198.18.70.5/24","Data":null}` {
		t.Errorf("auxiliary address = %s", got)
	}
	mac := `"Options":{"com.docker.network.endpoint.macaddress":"02:42:00:00:00:01"}`
	given := map[string]bool{}
	for range 5 {
		_, got := post(t, srv, "IpamDriver.RequestAddress", `{`+pool+`,`+mac+`}`)
		var resp RequestAddressResponse
		if err := json.Unmarshal([]byte(got), &resp); err != nil || !strings.HasPrefix(resp.Address, "198.18.70.") || given[resp.Address] {
			t.Fatalf("container address = %s", got)
		}
		if p, err := netip.ParsePrefix(resp.Address); err != nil || p.Bits() != 24 || !netip.MustParsePrefix("198.18.70.128/25").Contains(p.Addr()) {
			t.Errorf("%s is outside the range 198.18.70.128/25", resp.Address)
		}
		given[resp.Address] = true
	}
	if _, got := post(t, srv, "IpamDriver.RequestAddress", `{`+pool+`,"Address":"198.18.70.1",`+mac+`}`); !strings.Contains(got, "address 198.18.70.1 is held on this host (gateway)") {
		t.Errorf("a container asking for the gateway: %s", got)
	}
	var one string
	for a := range given {
		one = strings.TrimSuffix(a, "/24")
		break
	}
	if _, got := post(t, srv, "IpamDriver.ReleaseAddress", `{`+pool+`,"Address":"`+one+`"}`); got != `{}` {
		t.Errorf("ReleaseAddress = %s", got)
	}
	delete(given, one+"/24")

	// A restart on the same state directory holds the same leases.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	if _, err := d2.Restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := d2.Status(t.Context())
	if len(st.Pools) != 1 || len(st.Pools[0].Leases) != 2+len(given) {
		t.Fatalf("after a restart: pools %+v; want one pool with the gateway, the auxiliary and %d container leases", st.Pools, len(given))
	}
	srv2 := newServerFor(t, d2)
	for a := range given {
		addr := strings.TrimSuffix(a, "/24")
		if _, got := post(t, srv2, "IpamDriver.RequestAddress", `{`+pool+`,"Address":"`+addr+`",`+strings.Replace(mac, "01\"", "02\"", 1)+`}`); !strings.Contains(got, "is held on this host") {
			t.Errorf("after a restart, %s handed out again: %s", addr, got)
		}
	}
	if _, got := post(t, srv2, "IpamDriver.ReleasePool", `{`+pool+`}`); got != `{}` {
		t.Errorf("ReleasePool = %s", got)
	}
	if st := d2.Status(t.Context()); len(st.Pools) != 0 {
		t.Errorf("pools after ReleasePool: %+v", st.Pools)
	}
}

// dockerd asks again, when it starts, for the pools and addresses its
// networks hold: the same pool and addresses come back, and a pool is
// released only once its network is gone.
func TestIPAMDockerdRestart(t *testing.T) {
	srv, _, _ := newTestServer(t, fabric.ScopeLocal, "")
	poolReq := `{"AddressSpace":"vxlan-local","Pool":"198.18.71.0/24"}`
	_, got := post(t, srv, "IpamDriver.RequestPool", poolReq)
	if got != `{"PoolID":"vxlan-local:198.18.71.0_24","Pool":"198.18.71.0/24","Data":null}` {
		t.Fatalf("RequestPool = %s", got)
	}
	pool := `"PoolID":"vxlan-local:198.18.71.0_24"`
	gw := `{` + pool + `,"Options":{"RequestAddressType":"com.docker.network.gateway"}}`
	post(t, srv, "IpamDriver.RequestAddress", gw)
	ctr := `{` + pool + `,"Options":{"com.docker.network.endpoint.macaddress":"02:42:00:00:00:07"}}`
	_, got = post(t, srv, "IpamDriver.RequestAddress", ctr)
	var resp RequestAddressResponse
	if err := json.Unmarshal([]byte(got), &resp); err != nil || resp.Address == "" {
		t.Fatalf("container address: %s", got)
	}
	create := `{"NetworkID":"eeeeeeeeeeee","Options":{"com.docker.network.generic":{"VxlanId":"71"}},` +
		`"IPv4Data":[{"AddressSpace":"vxlan-local","Pool":"198.18.71.0/24","Gateway":"198.18.71.1/24"}]}`
	if _, got := post(t, srv, "NetworkDriver.CreateNetwork", create); got != `{}` {
		t.Fatalf("CreateNetwork = %s", got)
	}
	// dockerd starts again.
	if _, again := post(t, srv, "IpamDriver.RequestPool", poolReq); !strings.Contains(again, `"PoolID":"vxlan-local:198.18.71.0_24"`) {
		t.Errorf("RequestPool again = %s", again)
	}
	if _, again := post(t, srv, "IpamDriver.RequestAddress", strings.Replace(gw, pool, pool+`,"Address":"198.18.71.1"`, 1)); again != `{"Address":"198.18.71.1/24","Data":null}` {
		t.Errorf("the gateway again = %s", again)
	}
	addr := strings.TrimSuffix(resp.Address, "/24")
	if _, again := post(t, srv, "IpamDriver.RequestAddress", strings.Replace(ctr, pool, pool+`,"Address":"`+addr+`"`, 1)); again != got {
		t.Errorf("the container's address again = %s, want %s", again, got)
	}
	if _, other := post(t, srv, "IpamDriver.RequestAddress", `{`+pool+`,"Address":"`+addr+`","Options":{"com.docker.network.endpoint.macaddress":"02:42:00:00:00:08"}}`); !strings.Contains(other, "is held on this host") {
		t.Errorf("another container asking for it: %s", other)
	}
	if _, got := post(t, srv, "IpamDriver.RequestPool", `{"AddressSpace":"vxlan-local","Pool":"198.18.71.0/24","SubPool":"198.18.71.0/25"}`); !strings.Contains(got, "in use on this host with the ip-range 198.18.71.0/24") {
		t.Errorf("the subnet with another range: %s", got)
	}
	// A release while the network exists keeps the pool; after the
	// network is deleted it goes.
	post(t, srv, "IpamDriver.ReleasePool", `{`+pool+`}`)
	if _, again := post(t, srv, "IpamDriver.RequestAddress", strings.Replace(ctr, pool, pool+`,"Address":"`+addr+`"`, 1)); again != got {
		t.Errorf("after ReleasePool of a network's pool: %s", again)
	}
	post(t, srv, "NetworkDriver.DeleteNetwork", `{"NetworkID":"eeeeeeeeeeee"}`)
	post(t, srv, "IpamDriver.ReleasePool", `{`+pool+`}`)
	if _, gone := post(t, srv, "IpamDriver.RequestAddress", ctr); !strings.Contains(gone, "unknown pool") {
		t.Errorf("after the network and its pool were released: %s", gone)
	}
}
