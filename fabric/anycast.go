package fabric

import (
	"crypto/sha256"
	"encoding/binary"
	"net"
)

// GatewayLinkName is the name of the link that carries an anycast gateway
// (NetworkSpec.AnycastGateway) of the network of that ID.
func GatewayLinkName(networkID string) string { return "gw_" + ShortID(networkID) }

// GatewayMAC returns the MAC of the network's anycast gateway. It derives
// from what every host of the segment agrees on, the VNI and the UDP
// port, so that hosts give the gateway the same MAC without talking: a
// locally administered unicast address from a SHA-256 of them.
func (s *NetworkSpec) GatewayMAC() net.HardwareAddr {
	var b [len(gatewayMACLabel) + 6]byte
	copy(b[:], gatewayMACLabel)
	binary.BigEndian.PutUint32(b[len(gatewayMACLabel):], s.VXLAN.VNI)
	binary.BigEndian.PutUint16(b[len(gatewayMACLabel)+4:], s.Port())
	sum := sha256.Sum256(b[:])
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&0xfc | 0x02 // unicast, locally administered
	return mac
}

// gatewayMACLabel is hashed before the VNI and port in GatewayMAC, so that
// the gateway MAC is no other hash of them.
const gatewayMACLabel = "docker-vxlan-plugin anycast gateway"
