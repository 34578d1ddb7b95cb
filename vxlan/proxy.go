package vxlan

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// NeighState is the state of a neighbour (ARP or NDP) entry: the kernel's
// NUD_* bits. An entry made by [Client.AddProxyEntry] is NeighPermanent.
type NeighState uint16

// Neighbour states, with the kernel's values.
const (
	NeighIncomplete NeighState = linuxabi.NUD_INCOMPLETE // resolution under way
	NeighReachable  NeighState = linuxabi.NUD_REACHABLE  // confirmed recently
	NeighStale      NeighState = linuxabi.NUD_STALE      // usable, to be confirmed
	NeighDelay      NeighState = linuxabi.NUD_DELAY      // waiting before probing
	NeighProbe      NeighState = linuxabi.NUD_PROBE      // being probed
	NeighFailed     NeighState = linuxabi.NUD_FAILED     // resolution failed
	NeighNoARP      NeighState = linuxabi.NUD_NOARP      // needs no resolution (multicast, point-to-point)
	NeighPermanent  NeighState = linuxabi.NUD_PERMANENT  // set by hand, never expires
)

var neighStateNames = []struct {
	s    NeighState
	name string
}{
	{NeighIncomplete, "incomplete"}, {NeighReachable, "reachable"}, {NeighStale, "stale"}, {NeighDelay, "delay"},
	{NeighProbe, "probe"}, {NeighFailed, "failed"}, {NeighNoARP, "noarp"}, {NeighPermanent, "permanent"},
}

// String returns the state's name as `ip neigh` prints it in lower case
// ("permanent", "reachable", ...), several joined by "," and "none" for 0.
func (s NeighState) String() string {
	if s == 0 {
		return "none"
	}
	var names []string
	for _, n := range neighStateNames {
		if s&n.s != 0 {
			names = append(names, n.name)
			s &^= n.s
		}
	}
	if s != 0 {
		names = append(names, fmt.Sprintf("%#x", uint16(s)))
	}
	return strings.Join(names, ",")
}

// Answers reports whether the kernel answers ARP and ND requests from an
// entry in this state: only confirmed entries (permanent, noarp, reachable)
// are used by a proxying vxlan link.
func (s NeighState) Answers() bool {
	return s&(NeighPermanent|NeighNoARP|NeighReachable) != 0
}

// ProxyEntry is an IP-to-MAC entry of a vxlan link's neighbour table. When
// the link has Proxy set, the kernel answers ARP requests (IPv4) and
// neighbour solicitations (IPv6) for IP with MAC from these entries, locally,
// instead of flooding them to the remote VTEPs.
type ProxyEntry struct {
	// IP is the address asked for.
	IP netip.Addr
	// MAC is the answer.
	MAC net.HardwareAddr
	// State is the entry's state; see [NeighState.Answers].
	State NeighState
}

// String formats e as `ip neigh` does: "198.18.0.5 lladdr 02:... permanent".
func (e ProxyEntry) String() string {
	s := e.IP.String()
	if len(e.MAC) > 0 {
		s += " lladdr " + e.MAC.String()
	}
	return s + " " + e.State.String()
}

func checkProxyIP(ip netip.Addr) error {
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip.Is4In6() || ip.IsLoopback() {
		return &ConfigError{Field: "ip", Value: ip, Accepted: "a unicast IPv4 or IPv6 address (not loopback, not IPv4-mapped)"}
	}
	return nil
}

// proxyNeigh returns the neighbour entry for ip on the vxlan link called name.
func (c *Client) proxyNeigh(ctx context.Context, name string, ip netip.Addr, mac net.HardwareAddr) (*rtlink.Neigh, error) {
	l, err := c.vxlanLink(ctx, "proxy entry", name)
	if err != nil {
		return nil, err
	}
	fam := uint8(rtlink.FamilyIPv4)
	if ip.Is6() {
		fam = rtlink.FamilyIPv6
	}
	return &rtlink.Neigh{Family: fam, LinkIndex: l.Index, State: rtlink.NUDPermanent, IP: ip, MAC: mac}, nil
}

// AddProxyEntry installs a permanent neighbour entry ip → mac on the vxlan
// link called name, from which the link answers ARP (IPv4) or neighbour
// solicitation (IPv6) requests for ip once it has Proxy set. An entry for
// ip is replaced, so a moved address is re-pointed (an extern_learn entry
// of an EVPN daemon too, so leave those addresses to it). The entry can be
// added before Proxy is turned on; it is used from then on.
func (c *Client) AddProxyEntry(ctx context.Context, name string, ip netip.Addr, mac net.HardwareAddr) error {
	if err := checkProxyIP(ip); err != nil {
		return err
	}
	if !ValidMAC(mac) {
		return &ConfigError{Field: "mac", Value: mac, Accepted: "a 6-byte unicast MAC address other than 00:00:00:00:00:00"}
	}
	n, err := c.proxyNeigh(ctx, name, ip, mac)
	if err != nil {
		return err
	}
	if err := c.conn.ReplaceNeigh(ctx, n); err != nil {
		return fmt.Errorf("vxlan: add proxy entry %s on %s: %w", ip, name, err)
	}
	return nil
}

// DeleteProxyEntry removes the neighbour entry for ip from the vxlan link
// called name. An entry that is not there is not an error.
func (c *Client) DeleteProxyEntry(ctx context.Context, name string, ip netip.Addr) error {
	if err := checkProxyIP(ip); err != nil {
		return err
	}
	n, err := c.proxyNeigh(ctx, name, ip, nil)
	if err != nil {
		return err
	}
	return ignoreNotFound(c.conn.DeleteNeigh(ctx, n))
}

// ProxyEntries lists the IPv4 and IPv6 neighbour entries of the vxlan link
// called name, IPv4 first: those added with AddProxyEntry or `ip neigh add`
// and those the kernel made itself (for example noarp entries for IPv6
// multicast groups). Entries without a MAC (still resolving, or failed) have
// a nil MAC.
func (c *Client) ProxyEntries(ctx context.Context, name string) ([]ProxyEntry, error) {
	l, err := c.vxlanLink(ctx, "proxy entries", name)
	if err != nil {
		return nil, err
	}
	var out []ProxyEntry
	for _, fam := range []uint8{rtlink.FamilyIPv4, rtlink.FamilyIPv6} {
		neighs, err := c.conn.Neighs(ctx, fam, l.Index)
		if err != nil {
			return nil, err
		}
		for _, n := range neighs {
			out = append(out, ProxyEntry{IP: n.IP, MAC: n.MAC, State: NeighState(n.State)})
		}
	}
	return out, nil
}
