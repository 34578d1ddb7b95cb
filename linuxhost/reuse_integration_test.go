package linuxhost

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

// flagNetwork resolves a bridge-mode network on ul0 with VNI vni on UDP
// port port, with the GBP extension when gbp is set: GBP is one of the
// flags the kernel keeps per UDP socket, so a GBP and a plain vxlan link
// cannot both be up on one port.
func flagNetwork(t *testing.T, h *Host, id string, vni int, port uint16, gbp bool) *fabric.NetworkSpec {
	t.Helper()
	opts := map[string]string{"VxlanId": strconv.Itoa(vni), "Port": strconv.Itoa(int(port)), "GBP": strconv.FormatBool(gbp)}
	spec, err := fabric.Resolve(t.Context(), h, opts, fabric.ResolveConfig{ID: id, Scope: fabric.ScopeLocal, DefaultVTEP: []string{"ul0"}})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// A network made right after another is deleted never fails because of
// the deleted one's vxlan link, still waiting for deletion in the
// background: on each of several UDP ports at once, networks with and
// without GBP (which the kernel cannot have on one port together) are
// deleted and made again in turn, each with a VNI of its own, and every
// create succeeds; nothing is left.
func TestIntegrationCreateAfterDeleteOtherSocketFlags(t *testing.T) {
	ns := underlayNS(t)
	baseline := ns.Snapshot()
	h := New(ns.Dial())
	const ports, rounds = 4, 12
	var wg sync.WaitGroup
	errs := make(chan error, ports)
	for p := range ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- churnPort(t, h, uint16(4800+p), p, rounds)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	drain(t, h)
	if got := ns.Snapshot(); got != baseline {
		t.Fatalf("left:\n%s", got)
	}
}

// churnPort makes, on port, a network with GBP, then deletes it and at
// once makes one without, and so on for rounds networks; the last is
// deleted too.
func churnPort(t *testing.T, h *Host, port uint16, p, rounds int) error {
	ctx := context.WithoutCancel(t.Context())
	var prev *fabric.NetworkSpec
	for i := range rounds {
		spec := flagNetwork(t, h, fmt.Sprintf("c%02x%02x%011x", p, i, 0xc4ee), 7000+100*p+i, port, i%2 == 0)
		if prev != nil {
			if err := h.DeleteNetwork(ctx, prev, false); err != nil {
				return fmt.Errorf("port %d, round %d: delete: %w", port, i, err)
			}
		}
		if err := h.CreateNetwork(ctx, spec); err != nil {
			return fmt.Errorf("port %d, round %d: create (GBP %v) right after a delete: %w", port, i, spec.VXLAN.GBP, err)
		}
		prev = spec
	}
	return h.DeleteNetwork(ctx, prev, false)
}
