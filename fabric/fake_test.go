package fabric

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// fakeInterfaces is a host's interfaces for Resolve: names with their MTUs
// and addresses.
type fakeInterfaces struct {
	mtu   map[string]int
	addrs map[string][]netip.Addr
}

// hostWith returns a host whose interfaces are names, each of MTU 1500
// and without addresses.
func hostWith(names ...string) *fakeInterfaces {
	f := &fakeInterfaces{mtu: map[string]int{}, addrs: map[string][]netip.Addr{}}
	for _, n := range names {
		f.mtu[n] = 1500
	}
	return f
}

func (f *fakeInterfaces) LinkMTU(_ context.Context, name string) (int, error) {
	m, ok := f.mtu[name]
	if !ok {
		return 0, fmt.Errorf("get link %s: %w", name, vxlan.ErrNotFound)
	}
	return m, nil
}

func (f *fakeInterfaces) LinkAddrs(_ context.Context, name string) ([]netip.Addr, error) {
	if _, ok := f.mtu[name]; !ok {
		return nil, fmt.Errorf("get link %s: %w", name, vxlan.ErrNotFound)
	}
	return f.addrs[name], nil
}
