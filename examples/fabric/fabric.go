package main

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// This file is the part of the example a real tool keeps. Every host gets
// one vxlan link. A control plane that knows every host then programs, on
// every host, for every other host:
//
//   - a neighbour entry: the other host's overlay address → its vxlan MAC,
//     so no ARP or ND crosses the fabric;
//   - in unicast mode, a static FDB entry, the other host's vxlan MAC → its
//     VTEP, and a peer entry (the all-zero MAC → its VTEP) that replicates
//     broadcast and unknown traffic by unicast, so the underlay needs no
//     multicast and the links need no learning.
//
// In multicast mode the hosts join a group instead and learn MAC → VTEP
// from the traffic.

// vxlanName is the fabric's link on every host.
const vxlanName = "vx0"

type fabric struct {
	vni   uint32
	group netip.Addr // multicast mode when valid, unicast otherwise
	hosts []*host
}

// join brings host h into the fabric: its vxlan link, its overlay address,
// and, in unicast mode, the FDB entries between h and every other host.
// The other hosts' links are not touched, only their FDB.
func (f *fabric) join(ctx context.Context, h *host) error {
	c := vxlan.New(h.conn)
	unicast := !f.group.IsValid()
	cfg := vxlan.Config{
		Name:         vxlanName,
		VNI:          f.vni,
		Device:       "eth0",
		Local:        h.Underlay,
		Group:        f.group,
		HardwareAddr: h.VXMAC,
		Learning:     vxlan.Ptr(!unicast),
		Up:           true,
	}
	// Ensure, not Create: an agent that restarts finds its link and goes on.
	if _, err := c.Ensure(ctx, cfg); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	vx, err := h.conn.LinkByName(ctx, vxlanName)
	if err != nil {
		return err
	}
	if err := h.conn.AddAddress(ctx, vx, h.Overlay); err != nil {
		return fmt.Errorf("%s: overlay address: %w", h.Name, err)
	}
	for _, o := range f.hosts {
		if err := program(ctx, h, o, unicast); err != nil {
			return fmt.Errorf("%s, about %s: %w", h.Name, o.Name, err)
		}
		if err := program(ctx, o, h, unicast); err != nil {
			return fmt.Errorf("%s, about %s: %w", o.Name, h.Name, err)
		}
	}
	f.hosts = append(f.hosts, h)
	return nil
}

// program tells host h about host o.
func program(ctx context.Context, h, o *host, unicast bool) error {
	c := vxlan.New(h.conn)
	if unicast {
		if err := c.AddPeer(ctx, vxlanName, o.Underlay); err != nil {
			return err
		}
		if err := c.AddStaticMAC(ctx, vxlanName, o.VXMAC, o.Underlay); err != nil {
			return err
		}
	}
	return staticNeigh(ctx, h.conn, vxlanName, o.Overlay.Addr(), o.VXMAC)
}

// linkIndexes returns each host's vxlan link index, to show that adding a
// host leaves the others' links as they were.
func (f *fabric) linkIndexes(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, h := range f.hosts {
		l, err := h.conn.LinkByName(ctx, vxlanName)
		if err != nil {
			return nil, err
		}
		out[h.Name] = l.Index
	}
	return out, nil
}
