package linuxhost

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/netfault"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

var errInjected = errors.New("injected fault")

// underlayNS is a fresh namespace with an underlay device "ul0" (MTU 1500)
// holding 198.18.4.1/24.
func underlayNS(t testing.TB) *testns.NS {
	t.Helper()
	ns := testns.New(t)
	ns.IP("link", "add", "ul0", "type", "veth", "peer", "name", "ul1")
	ns.IP("addr", "add", "198.18.4.1/24", "dev", "ul0")
	ns.IP("link", "set", "ul0", "up")
	return ns
}

// bridgeNetwork resolves a bridge-mode network of VNI vni on ul0 with the
// gateway 198.19.<third>.1/24 on its bridge.
func bridgeNetwork(t *testing.T, h *Host, id string, vni, third int) *fabric.NetworkSpec {
	t.Helper()
	spec, err := fabric.Resolve(t.Context(), h, map[string]string{"VxlanId": fmt.Sprint(vni)}, fabric.ResolveConfig{
		ID: id, Scope: fabric.ScopeLocal, DefaultVTEP: []string{"ul0"}, Gateways: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("198.19.%d.1/24", third))}})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// drain waits until the host has deleted every link it released.
func drain(t *testing.T, h *Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := h.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

// makeAndDelete makes the network with one endpoint, then deletes both.
func makeAndDelete(t *testing.T, h *Host, spec *fabric.NetworkSpec, epID string) {
	t.Helper()
	ctx := t.Context()
	if err := h.CreateNetwork(ctx, spec); err != nil {
		t.Fatal(err)
	}
	ep := fabric.NewEndpoint(epID, netip.MustParsePrefix(spec.Gateways[0].Addr().Next().String()+"/24"))
	if err := h.CreateEndpoint(ctx, spec, ep, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteEndpoint(ctx, spec, ep); err != nil {
		t.Fatal(err)
	}
}

// The background deletion of released links is retried when it fails:
// a network deleted while the kernel refuses the deletion is gone once
// the kernel accepts it again, and nothing is left.
func TestIntegrationReapFaultRetried(t *testing.T) {
	ns := underlayNS(t)
	baseline := ns.Snapshot()
	var mu sync.Mutex
	fails := 1
	h := New(ns.DialFaulty(func(r netfault.Request) error {
		mu.Lock()
		defer mu.Unlock()
		if r.Op == rtlink.OpDeleteLinkGroup && fails > 0 {
			fails--
			return errInjected
		}
		return nil
	}))
	spec := bridgeNetwork(t, h, "4ea94ea94ea94ea9", 43, 4)
	makeAndDelete(t, h, spec, "e4ea94ea94ea94ea")
	if err := h.DeleteNetwork(t.Context(), spec, false); err != nil {
		t.Fatal(err)
	}
	drain(t, h)
	mu.Lock()
	defer mu.Unlock()
	if fails != 0 {
		t.Fatal("the deletion was never tried")
	}
	if got := ns.Snapshot(); got != baseline {
		t.Fatalf("left after a failed and retried deletion:\n%s", got)
	}
}

// Networks deleted one after another have their bridges deleted at most
// reapBridges to a request (the kernel holds its configuration lock for
// each bridge of a request), their vxlan links and container veths with
// them, and nothing is left. Each deletion request's bridges are counted
// from the kernel's listing as the request is sent.
func TestIntegrationReapBridgesPerRequest(t *testing.T) {
	ns := underlayNS(t)
	baseline := ns.Snapshot()
	lister := ns.Dial()
	var mu sync.Mutex
	var perRequest []int // bridges in each deletion request
	var listErr error
	h := New(ns.DialFaulty(func(r netfault.Request) error {
		if r.Op != rtlink.OpDeleteLinkGroup {
			return nil
		}
		links, err := lister.BriefLinks(context.Background())
		n := 0
		for _, l := range links {
			if r.Link == fmt.Sprintf("group %d", l.Group) && l.Kind == linkKindBridge {
				n++
			}
		}
		mu.Lock()
		defer mu.Unlock()
		perRequest = append(perRequest, n)
		listErr = errors.Join(listErr, err)
		return nil
	}))
	const networks = 3*reapBridges + 2
	specs := make([]*fabric.NetworkSpec, networks)
	for i := range specs {
		specs[i] = bridgeNetwork(t, h, fmt.Sprintf("5b%010x5b5b", i+1), 500+i, 100+i)
		makeAndDelete(t, h, specs[i], fmt.Sprintf("e%011xe5be", i+1))
	}
	for _, spec := range specs {
		if err := h.DeleteNetwork(t.Context(), spec, false); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, h)
	mu.Lock()
	defer mu.Unlock()
	if listErr != nil {
		t.Fatal(listErr)
	}
	total, most := 0, 0
	for _, n := range perRequest {
		total, most = total+n, max(most, n)
	}
	if total != networks || most > reapBridges || most < reapBridges/2 {
		t.Fatalf("bridges per deletion request %v: %d in all (want %d), at most %d (want %d at most, and batched)", perRequest, total, networks, most, reapBridges)
	}
	if got := ns.Snapshot(); got != baseline {
		t.Fatalf("left:\n%s", got)
	}
}
