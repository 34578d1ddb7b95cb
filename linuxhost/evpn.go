package linuxhost

import (
	"context"
	"fmt"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// evpnPortLearning and evpnPortNeighSuppress are the bridge port flags an
// EVPN network's vxlan link gets: no learning of remote MACs from traffic
// (the routing daemon installs them), and ARP and neighbour solicitations
// answered from the bridge's neighbour entries rather than flooded to
// every VTEP.
const evpnPortLearning, evpnPortNeighSuppress = false, true

// ensureEVPNPort gives the vxlan link of an EVPN network, a port of its
// bridge, its port flags: they are read first and set only when they
// differ, so a network made again (after a restart) is checked and fixed.
// Other networks are left as they are.
func (h *Host) ensureEVPNPort(ctx context.Context, spec *fabric.NetworkSpec, vx *rtlink.Link) error {
	if spec.ControlPlane != fabric.ControlPlaneEVPN {
		return nil
	}
	have, err := h.conn.BridgePort(ctx, vx.Name)
	if err != nil {
		return fmt.Errorf("EVPN bridge port flags of %s: %w", vx.Name, err)
	}
	if have.Learning != nil && *have.Learning == evpnPortLearning && have.NeighSuppress != nil && *have.NeighSuppress == evpnPortNeighSuppress {
		return nil
	}
	want := &rtlink.BridgePort{Learning: rtlink.Ptr(evpnPortLearning), NeighSuppress: rtlink.Ptr(evpnPortNeighSuppress)}
	if err := h.conn.SetBridgePort(ctx, vx.Name, want); err != nil {
		return fmt.Errorf("EVPN bridge port flags of %s (learning off, neigh_suppress on): %w", vx.Name, err)
	}
	return nil
}
