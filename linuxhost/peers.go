package linuxhost

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// AddPeer adds peer to the default FDB entry of the network's vxlan link,
// so that its floods reach the peer by unicast, and to the network's VTEP
// filter's allow-list.
func (h *Host) AddPeer(ctx context.Context, spec *fabric.NetworkSpec, peer netip.Addr) error {
	if err := h.vx.AddPeer(ctx, spec.VXLAN.Name, peer); err != nil {
		return fmt.Errorf("add peer %s to %s: %w", peer, spec.VXLAN.Name, err)
	}
	return h.changeFilterPeer(ctx, spec, peer, true)
}

// RemovePeer removes peer from the default FDB entry of the network's
// vxlan link, and from its VTEP filter's allow-list unless its Peers option
// names it. A link that is gone has no entry: not an error.
func (h *Host) RemovePeer(ctx context.Context, spec *fabric.NetworkSpec, peer netip.Addr) error {
	err := h.vx.RemovePeer(ctx, spec.VXLAN.Name, peer)
	if err != nil && !errors.Is(err, rtlink.ErrNotFound) {
		return fmt.Errorf("remove peer %s from %s: %w", peer, spec.VXLAN.Name, err)
	}
	return h.changeFilterPeer(ctx, spec, peer, false)
}
