package docker

import (
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

// The IPAM protocol as dockerd speaks it, on a host that does not probe:
// pools, the gateway, containers' and auxiliary addresses, errors in the
// field the IPAM protocol reads, and leases kept across a restart.
func TestIPAMProtocol(t *testing.T) {
	d, srv, host, dir := newStateDriver(t)
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
	d2 := restartDriver(t, d, host, dir)
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

// A bridge network on the driver's own pools gets an anycast gateway and,
// from each pool that holds a gateway, one address of the host's own (not
// the gateway, not a container's), on its bridge, kept in the state and
// held as a "host" lease; deleting the network gives it back. A network on
// Docker's own IPAM keeps the gateway on its bridge.
func TestIPAMAnycastGatewayHostAddresses(t *testing.T) {
	d, srv, host, dir := newStateDriver(t)
	post(t, srv, "IpamDriver.RequestPool", `{"AddressSpace":"vxlan-local","Pool":"198.18.72.0/24"}`)
	post(t, srv, "IpamDriver.RequestPool", `{"AddressSpace":"vxlan-local","Pool":"fd00:72::/64","V6":true}`)
	for _, pool := range []string{"vxlan-local:198.18.72.0_24", "vxlan-local:fd00:72::_64"} {
		post(t, srv, "IpamDriver.RequestAddress", `{"PoolID":"`+pool+`","Options":{"RequestAddressType":"com.docker.network.gateway"}}`)
	}
	create := `{"NetworkID":"aaaa72aaaa72","Options":{"com.docker.network.enable_ipv6":true,"com.docker.network.generic":{"VxlanId":"72"}},` +
		`"IPv4Data":[{"AddressSpace":"vxlan-local","Pool":"198.18.72.0/24","Gateway":"198.18.72.1/24"}],` +
		`"IPv6Data":[{"AddressSpace":"vxlan-local","Pool":"fd00:72::/64","Gateway":"fd00:72::1/64"}]}`
	if _, got := post(t, srv, "NetworkDriver.CreateNetwork", create); got != `{}` {
		t.Fatalf("CreateNetwork = %s", got)
	}
	if made := host.networks["aaaa72aaaa72"]; made == nil || !made.AnycastGateway {
		t.Fatalf("network on the driver's pools, as made on the host: %+v, want an anycast gateway", made)
	}
	spec := d.network("aaaa72aaaa72").spec
	if len(host.hostAddresses) != 2 || !slices.Equal(spec.HostAddresses, host.hostAddresses) {
		t.Fatalf("host addresses %v (spec %v), want one per pool", host.hostAddresses, spec.HostAddresses)
	}
	for i, subnet := range []string{"198.18.72.0/24", "fd00:72::/64"} {
		p := host.hostAddresses[i]
		if p.Masked().String() != subnet || p.Addr() == netip.MustParsePrefix(subnet).Addr().Next() {
			t.Errorf("host address %v: want an address of %s with its prefix length, not the gateway", p, subnet)
		}
	}
	uses := func(d *Driver) map[string]string {
		out := map[string]string{}
		for _, ps := range d.Status(t.Context()).Pools {
			for _, l := range ps.Leases {
				out[l.Addr.String()] = string(l.Use)
			}
		}
		return out
	}
	for _, p := range spec.HostAddresses {
		if got := uses(d)[p.Addr().String()]; got != "host" {
			t.Errorf("lease of %s: %q, want host", p.Addr(), got)
		}
	}

	// A restart finds the host addresses in the state: none is asked for
	// again.
	d2 := restartDriver(t, d, host, dir)
	if n := d2.network("aaaa72aaaa72"); n == nil || !slices.Equal(n.spec.HostAddresses, host.hostAddresses) || !n.spec.AnycastGateway {
		t.Fatalf("after a restart: %+v, want the same host addresses %v", n, host.hostAddresses)
	}
	if len(host.hostAddresses) != 2 {
		t.Fatalf("a restart asked for more host addresses: %v", host.hostAddresses)
	}
	srv2 := newServerFor(t, d2)
	post(t, srv2, "NetworkDriver.DeleteNetwork", `{"NetworkID":"aaaa72aaaa72"}`)
	for _, p := range spec.HostAddresses {
		if got, ok := uses(d2)[p.Addr().String()]; ok {
			t.Errorf("after the network's deletion, %s is still leased (%s)", p.Addr(), got)
		}
	}

	create = `{"NetworkID":"bbbb72bbbb72","Options":{"com.docker.network.generic":{"VxlanId":"73"}},` +
		`"IPv4Data":[{"AddressSpace":"LocalDefault","Pool":"198.18.73.0/24","Gateway":"198.18.73.1/24"}]}`
	if _, got := post(t, srv2, "NetworkDriver.CreateNetwork", create); got != `{}` {
		t.Fatalf("CreateNetwork = %s", got)
	}
	if spec := host.networks["bbbb72bbbb72"]; spec == nil || spec.AnycastGateway || len(spec.HostAddresses) != 0 {
		t.Fatalf("network on Docker's IPAM: %+v, want its gateway on the bridge", spec)
	}
}

// newStateDriver starts a local-scope driver on a fake host with a state
// directory of its own, and serves it.
func newStateDriver(t *testing.T) (*Driver, *httptest.Server, *fakeHost, string) {
	t.Helper()
	dir := t.TempDir()
	host := newFakeHost()
	d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return d, newServerFor(t, d), host, dir
}

// restartDriver closes d and starts a local-scope driver on host again
// from the state directory dir, restored; it is closed at cleanup.
func restartDriver(t *testing.T, d *Driver, host *fakeHost, dir string) *Driver {
	t.Helper()
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
	return d2
}
