package fabric

import (
	"crypto/rand"
	"net"
	"net/netip"
)

// Endpoint is a container's attachment to a network.
type Endpoint struct {
	// ID is the endpoint's ID; its first 12 characters name its links.
	ID string
	// HostIf is the host end of the veth pair, a port of the bridge (bridge
	// mode); ContainerIf is the container's interface while it is in the
	// host's namespace.
	HostIf, ContainerIf string
	// MAC is the container interface's address.
	MAC         net.HardwareAddr
	Address     netip.Prefix // IPv4, may be zero
	AddressIPv6 netip.Prefix // may be zero
}

// NewEndpoint returns the endpoint of a container attachment with the
// given ID and IPv4 address (zero for none): its link names (HostIfName,
// ContainerIfName) and its MAC, MACFor the address.
func NewEndpoint(id string, addr netip.Prefix) *Endpoint {
	return &Endpoint{ID: id, HostIf: HostIfName(id), ContainerIf: ContainerIfName(id), MAC: MACFor(addr), Address: addr}
}

// MACFor returns the MAC of an endpoint that was given none: 02:42
// followed by the IPv4 address, as Docker's bridge driver does (unique
// within the segment because the address is), or a random locally
// administered one for an IPv6-only endpoint (or the zero prefix).
func MACFor(addr netip.Prefix) net.HardwareAddr {
	if addr.IsValid() && addr.Addr().Is4() {
		a := addr.Addr().As4()
		return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
	}
	m := make(net.HardwareAddr, 6)
	_, _ = rand.Read(m)
	m[0] = m[0]&0xfe | 0x02
	return m
}
