package fabric

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// ControlPlane says how the VTEPs of a network find each other and the
// remote containers' MAC addresses.
type ControlPlane uint8

// The control planes of the ControlPlane option.
const (
	// ControlPlaneNone is flood and learn: broadcast and unknown unicast go
	// to the network's Group or Peers, and the kernel learns where remote
	// MACs are from the traffic it receives (the default).
	ControlPlaneNone ControlPlane = iota
	// ControlPlaneEVPN leaves both to a BGP EVPN routing daemon on the host
	// (FRRouting's zebra and bgpd): it advertises the VNI and the local
	// MACs it finds in the bridge's FDB, and installs the other hosts'
	// VTEPs (as all-zero FDB entries) and MACs (as extern_learn entries)
	// into the vxlan link's FDB. The plugin builds what the daemon expects:
	// a vxlan link with learning off and its local address set, as a port
	// of the network's bridge with learning off and neighbour suppression on.
	ControlPlaneEVPN
)

// controlPlaneNames are the option's values, indexed by ControlPlane.
var controlPlaneNames = [...]string{ControlPlaneNone: "none", ControlPlaneEVPN: "evpn"}

// String returns the option value of c: "none" or "evpn".
func (c ControlPlane) String() string {
	if int(c) < len(controlPlaneNames) {
		return controlPlaneNames[c]
	}
	return fmt.Sprintf("ControlPlane(%d)", uint8(c))
}

// ParseControlPlane reads a control plane as the ControlPlane option and
// String write it, in any case; "" is none, as in a network record written
// before the option existed.
func ParseControlPlane(s string) (ControlPlane, error) {
	if s == "" {
		return ControlPlaneNone, nil
	}
	for c, name := range controlPlaneNames {
		if strings.EqualFold(s, name) {
			return ControlPlane(c), nil
		}
	}
	return 0, fmt.Errorf("unknown control plane %q", s)
}

// controlPlaneAccepted is the "accepted:" text of the ControlPlane option.
const controlPlaneAccepted = "none (flood and learn) or evpn (BGP EVPN through a routing daemon on the host)"

// evpnNeedsBridge says why macvlan-mode networks do not take
// ControlPlane=evpn, as found on the kernel and FRR 8.4 (see
// internal/frr's TestIntegrationEVPNNeedsBridge).
const evpnNeedsBridge = "BGP EVPN needs the vxlan link to be a bridge port: FRR's zebra hands a VNI to bgpd only when its vxlan link " +
	"has a bridge master, and finds the local MACs in that bridge's FDB, so with macvlan links on the vxlan " +
	"nothing is advertised or installed"

func controlPlaneValue(p *parsedOptions, v string) error {
	c, err := ParseControlPlane(v)
	if err != nil || v == "" {
		return fmt.Errorf("unknown control plane")
	}
	p.spec.ControlPlane = c
	return nil
}

// checkControlPlane applies the rules of ControlPlane=evpn to the other
// options: the routing daemon finds the remote VTEPs, so Peers and Group
// are refused; it installs the remote MACs, so the vxlan link learns none
// (Learning=true is refused, learning is turned off).
func (p *parsedOptions) checkControlPlane(opts map[string]string) error {
	s := p.spec
	if s.ControlPlane != ControlPlaneEVPN {
		return nil
	}
	for _, o := range []struct{ name, why string }{
		{"Peers", "the routing daemon installs the remote VTEPs it learns from BGP; static peers would flood to VTEPs it does " +
			"not know and outlive hosts it withdraws"},
		{"Group", "broadcast goes by head-end replication to the VTEPs the routing daemon installs; a multicast group or a " +
			"single remote on the vxlan link would take their place"},
	} {
		if k, ok := p.typed[o.name]; ok {
			return &OptionError{
				Option:   k,
				Value:    opts[k],
				Problem:  "not with ControlPlane=evpn: " + o.why,
				Accepted: "no " + o.name + " with ControlPlane=evpn",
			}
		}
	}
	if l := s.VXLAN.Learning; l != nil && *l {
		k := p.given("Learning")
		return &OptionError{
			Option:   k,
			Value:    opts[k],
			Problem:  "contradicts ControlPlane=evpn: the routing daemon installs the remote MACs, so the vxlan link learns none",
			Accepted: "false, or no Learning, with ControlPlane=evpn",
		}
	}
	s.VXLAN.Learning = vxlan.Ptr(false)
	return nil
}

// completeEVPN sets what an EVPN network needs of this host, run on each
// host (so in global scope each host gets its own): the vxlan link's local
// address, which FRR advertises as this host's VTEP (it ignores a vxlan
// link without one): SrcAddr when given, else the VTEP device's first
// global IPv4 address, else its first global IPv6 address. (The bridge's
// MAC address of its own, which keeps the extern_learn neighbour entries
// the routing daemon installs, every bridge gets: see nameLinks.)
func (r *resolver) completeEVPN(ctx context.Context, spec *NetworkSpec) error {
	if spec.ControlPlane != ControlPlaneEVPN || spec.VXLAN.Local.IsValid() || r.ifs == nil {
		return nil
	}
	src := lookupOption("SrcAddr")
	const need = "missing: ControlPlane=evpn needs the vxlan link's local address, which the routing daemon advertises as this host's VTEP"
	dev := spec.VXLAN.Device
	if dev == "" {
		return &OptionError{
			Option:   src.Name,
			Problem:  need + ": give SrcAddr, or VtepDev (or the plugin's default VTEP device) naming a device with a global address",
			Accepted: src.Accepted,
		}
	}
	addrs, err := r.ifs.LinkAddrs(ctx, dev)
	if err != nil {
		return fmt.Errorf("ControlPlane=evpn: addresses of VTEP device %s: %w", dev, err)
	}
	local, ok := firstGlobal(addrs)
	if !ok {
		return &OptionError{
			Option:   src.Name,
			Problem:  fmt.Sprintf("%s: the VTEP device %s has no global address; give SrcAddr, or a VtepDev with one", need, dev),
			Accepted: src.Accepted,
		}
	}
	spec.VXLAN.Local = local
	return nil
}

// firstGlobal returns the first global unicast IPv4 address of addrs, or
// else the first global unicast IPv6 one.
func firstGlobal(addrs []netip.Addr) (netip.Addr, bool) {
	for _, want6 := range []bool{false, true} {
		for _, a := range addrs {
			if a.Is6() == want6 && a.IsGlobalUnicast() {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}
