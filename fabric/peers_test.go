package fabric

import (
	"context"
	"net/netip"
	"slices"
	"testing"
)

// One Peers list naming every host serves every host: each drops its own
// VTEP addresses from it.
func TestResolveDropsOwnPeers(t *testing.T) {
	ifs := hostWith("eth0")
	ifs.addrs["eth0"] = []netip.Addr{netip.MustParseAddr("198.18.20.2"), netip.MustParseAddr("fd00:20::2")}
	opts := map[string]string{"VxlanId": "60", "VtepDev": "eth0", "Peers": "198.18.20.1,198.18.20.2,198.18.20.3"}
	spec, err := Resolve(context.Background(), ifs, opts, ResolveConfig{ID: "0123456789ab", Scope: ScopeLocal})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("198.18.20.1"), netip.MustParseAddr("198.18.20.3")}
	if !slices.Equal(spec.Peers, want) {
		t.Errorf("Peers = %v, want %v (this host's 198.18.20.2 dropped)", spec.Peers, want)
	}
}
