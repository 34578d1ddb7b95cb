package linuxhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/undo"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// An anycast gateway (fabric.NetworkSpec.AnycastGateway) is built as
// EVPN fabrics' distributed gateways are (Cumulus's VRR, for one):
//
//   - the gateway addresses sit, alone (/32, /128), on a macvlan link over
//     the bridge whose MAC is the network's gateway MAC, the same on every
//     host; the link makes no IPv6 address of its own, since its
//     link-local address would be every host's too;
//   - the bridge holds that MAC as a local entry of its forwarding
//     database, so what containers send to the gateway goes up to this
//     host, never out through the vxlan link;
//   - the bridge carries the host's own addresses (HostAddresses), so the
//     subnet's route goes through the bridge and its own MAC: what the
//     host sends to a container, and the container's answer, use an
//     address and a MAC no other host has;
//   - the bridge answers ARP only for its own addresses (arp_ignore 1),
//     and asks with its own address as sender (arp_announce 2): otherwise
//     it answers for the gateway with its own MAC, or teaches containers
//     that MAC for the gateway when it asks for them on the gateway's
//     behalf (an echo reply from the gateway's address).
//
// A macvlan on a bridge puts the bridge in promiscuous mode (a bridge
// filters no unicast MAC), so the bridge also hands every frame it
// forwards up to the host, where it is dropped; measured here with iperf3
// between two hosts' containers, no cost shows.

// gatewayARPConf is the bridge's ARP behaviour beside an anycast gateway.
var gatewayARPConf = []rtlink.IPv4Conf{
	{Setting: rtlink.IPv4ARPIgnore, Value: 1},
	{Setting: rtlink.IPv4ARPAnnounce, Value: 2},
}

// ensureAnycastGateway makes or adopts the network's anycast gateway link
// on bridge br with the gateway addresses, the bridge's local FDB entry for
// the gateway MAC, the bridge's ARP settings and the host addresses on the
// bridge.
func (h *Host) ensureAnycastGateway(ctx context.Context, spec *fabric.NetworkSpec, br *rtlink.Link, u *undo.Steps) error {
	if err := h.conn.SetIPv4Conf(ctx, br.Name, gatewayARPConf...); err != nil {
		return fmt.Errorf("ARP settings of bridge %s for the anycast gateway: %w", br.Name, err)
	}
	gw, err := h.ensureGatewayLink(ctx, spec, br, u)
	if err != nil {
		return err
	}
	for _, p := range spec.Gateways {
		if err := h.addAddress(ctx, gw, gatewayAddress(p), u); err != nil {
			return fmt.Errorf("gateway %s on %s: %w", p.Addr(), gw.Name, err)
		}
	}
	err = h.conn.ReplaceNeigh(ctx, &rtlink.Neigh{
		Family: rtlink.FamilyBridge, LinkIndex: br.Index, State: rtlink.NUDPermanent, Flags: rtlink.NTFSelf, MAC: gw.HardwareAddr,
	})
	if err != nil {
		return fmt.Errorf("local FDB entry of bridge %s for the gateway MAC %s: %w", br.Name, gw.HardwareAddr, err)
	}
	for _, p := range spec.HostAddresses {
		if err := h.addAddress(ctx, br, p, u); err != nil {
			return fmt.Errorf("host address %s on bridge %s: %w", p, br.Name, err)
		}
	}
	if msg := h.strictRPFilter(ctx, gw.Name); msg != "" {
		h.reap.log.Warn("anycast gateway of network "+fabric.ShortID(spec.ID)+": "+msg, "network", fabric.ShortID(spec.ID))
	}
	return nil
}

// strictRPFilter says, when the kernel applies strict reverse-path
// filtering (rp_filter 1) to the anycast gateway link gw, what that does;
// else it returns "". What containers send through the gateway comes in
// on gw while the route back to them goes out through the bridge, so a
// strict filter drops it. The kernel applies the larger of the link's and
// "all"'s values.
func (h *Host) strictRPFilter(ctx context.Context, gw string) string {
	for _, name := range []string{"all", gw} {
		if v, err := h.conn.ReadIPv4Conf(ctx, name, "rp_filter"); err == nil && v == "1" {
			return fmt.Sprintf("net.ipv4.conf.%s.rp_filter is 1 (strict): what containers send through the gateway to other networks is dropped; set it to 2 (loose) or 0", name)
		}
	}
	return ""
}

// ensureGatewayLink makes the anycast gateway link over br, or adopts the
// one an earlier call made.
func (h *Host) ensureGatewayLink(ctx context.Context, spec *fabric.NetworkSpec, br *rtlink.Link, u *undo.Steps) (*rtlink.Link, error) {
	name, mark, mac := fabric.GatewayLinkName(spec.ID), fabric.OwnerMark(spec.ID), spec.GatewayMAC()
	l, err := h.conn.LinkByName(ctx, name)
	switch {
	case err == nil:
		if l.Alias != mark || l.Kind != linkKindMacvlan {
			return nil, fmt.Errorf("anycast gateway link %s exists and was not made by this plugin for this network; it is left alone", name)
		}
		if l.ParentIndex != br.Index || !bytes.Equal(l.HardwareAddr, mac) {
			return nil, fmt.Errorf("anycast gateway link %s is not on bridge %s with MAC %s; delete it and create the network again", name, br.Name, mac)
		}
		if !l.Up {
			if err := h.conn.SetUp(ctx, name); err != nil {
				return nil, err
			}
		}
		return l, nil
	case !errors.Is(err, rtlink.ErrNotFound):
		return nil, err
	}
	l, err = h.conn.CreateLink(ctx, &rtlink.Link{
		Name: name, ParentIndex: br.Index, HardwareAddr: mac, Alias: mark, Data: &rtlink.Macvlan{Mode: rtlink.MacvlanModeBridge},
	})
	if err != nil {
		return nil, fmt.Errorf("anycast gateway link %s on bridge %s: %w", name, br.Name, err)
	}
	u.Add(func(ctx context.Context) { _ = h.conn.DeleteLink(ctx, name) })
	if spec.HasIPv6Gateway() {
		err = h.conn.SetIPv6AddrGenModeNone(ctx, name)
	} else {
		err = h.conn.DisableIPv6(ctx, name)
	}
	if err == nil {
		err = h.conn.SetUp(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	l.HardwareAddr, l.Up = mac, true
	return l, nil
}

// addAddress puts p on link l; one there already (from an earlier call)
// is not an error. A new one is taken back if the call fails later.
func (h *Host) addAddress(ctx context.Context, l *rtlink.Link, p netip.Prefix, u *undo.Steps) error {
	err := h.conn.AddAddress(ctx, l, p)
	if errors.Is(err, rtlink.ErrExists) {
		return nil
	}
	if err != nil {
		return err
	}
	u.Add(func(ctx context.Context) { _ = h.conn.DeleteAddress(ctx, l, p) })
	return nil
}

// gatewayAddress is a gateway as the anycast gateway link carries it: the
// address alone (/32, /128), so that the link gets no route to the subnet;
// the subnet's route is the bridge's, through the host's own address.
func gatewayAddress(gw netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(gw.Addr(), gw.Addr().BitLen())
}

// AddHostAddress puts p, one of this host's own addresses on the segment
// of a network with an anycast gateway, on the network's bridge. An
// address the bridge carries already is not an error.
func (h *Host) AddHostAddress(ctx context.Context, spec *fabric.NetworkSpec, p netip.Prefix) error {
	if spec.Kind != fabric.KindBridge || !spec.AnycastGateway {
		return fmt.Errorf("network %s has no anycast gateway: its host takes no address of its own", fabric.ShortID(spec.ID))
	}
	br, err := h.conn.LinkByName(ctx, spec.Bridge.Name)
	if err != nil {
		return fmt.Errorf("host address %s: bridge %s: %w", p, spec.Bridge.Name, err)
	}
	if err := h.conn.AddAddress(ctx, br, p); err != nil && !errors.Is(err, rtlink.ErrExists) {
		return fmt.Errorf("host address %s on bridge %s: %w", p, br.Name, err)
	}
	return nil
}

// removeAnycastGateway takes the anycast gateway off an operator's bridge
// br, which stays: the gateway link, the bridge's FDB entry for the
// gateway MAC and the host addresses. (On the plugin's own bridge they go
// with the bridge.)
func (h *Host) removeAnycastGateway(ctx context.Context, spec *fabric.NetworkSpec, br *rtlink.Link) error {
	if err := h.deleteMarked(ctx, fabric.GatewayLinkName(spec.ID), fabric.OwnerMark(spec.ID)); err != nil {
		return err
	}
	err := h.conn.DeleteNeigh(ctx, &rtlink.Neigh{Family: rtlink.FamilyBridge, LinkIndex: br.Index, Flags: rtlink.NTFSelf, MAC: spec.GatewayMAC()})
	if err != nil && !errors.Is(err, rtlink.ErrNotFound) {
		return err
	}
	for _, p := range spec.HostAddresses {
		if err := h.conn.DeleteAddress(ctx, br, p); err != nil && !errors.Is(err, rtlink.ErrNotFound) {
			return err
		}
	}
	return nil
}
