package frr

import (
	"fmt"
	"net/netip"
	"strings"
)

// EVPNConfig returns the frr.conf of a VTEP host that runs iBGP EVPN in
// autonomous system as with each neighbour, under router ID routerID (the
// host's underlay address): it advertises every local VNI zebra finds
// (advertise-all-vni) and installs the neighbours' MACs and VTEPs into the
// kernel. With a route reflector, neighbours is just the reflector.
//
// For two hosts 198.18.77.1 and .2 it is, on the first:
//
//	frr defaults datacenter
//	router bgp 65000
//	 bgp router-id 198.18.77.1
//	 no bgp default ipv4-unicast
//	 neighbor 198.18.77.2 remote-as 65000
//	 address-family l2vpn evpn
//	  neighbor 198.18.77.2 activate
//	  advertise-all-vni
//	 exit-address-family
func EVPNConfig(routerID netip.Addr, as uint32, neighbors ...netip.Addr) string {
	return evpnConfig(routerID, as, neighbors, false)
}

// EVPNRouteReflectorConfig returns the frr.conf of a route reflector for
// the EVPN hosts clients, each of which peers only with the reflector
// (their configuration is [EVPNConfig] with the reflector as the one
// neighbour). The reflector passes each client's routes on to the others, so
// adding a host means configuring it and the reflector, not every host. It
// is a VTEP itself too (advertise-all-vni), so it may be one of the hosts.
func EVPNRouteReflectorConfig(routerID netip.Addr, as uint32, clients ...netip.Addr) string {
	return evpnConfig(routerID, as, clients, true)
}

func evpnConfig(routerID netip.Addr, as uint32, neighbors []netip.Addr, reflect bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults datacenter\nrouter bgp %d\n bgp router-id %s\n no bgp default ipv4-unicast\n", as, routerID)
	for _, n := range neighbors {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n", n, as)
	}
	b.WriteString(" address-family l2vpn evpn\n")
	for _, n := range neighbors {
		fmt.Fprintf(&b, "  neighbor %s activate\n", n)
		if reflect {
			fmt.Fprintf(&b, "  neighbor %s route-reflector-client\n", n)
		}
	}
	b.WriteString("  advertise-all-vni\n exit-address-family\n")
	return b.String()
}
