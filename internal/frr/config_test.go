package frr

import (
	"net/netip"
	"testing"
)

// The direct form is the configuration issue 12 verified on two hosts.
func TestEVPNConfig(t *testing.T) {
	got := EVPNConfig(netip.MustParseAddr("198.18.77.1"), 65000, netip.MustParseAddr("198.18.77.2"))
	want := `frr defaults datacenter
router bgp 65000
 bgp router-id 198.18.77.1
 no bgp default ipv4-unicast
 neighbor 198.18.77.2 remote-as 65000
 address-family l2vpn evpn
  neighbor 198.18.77.2 activate
  advertise-all-vni
 exit-address-family
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEVPNRouteReflectorConfig(t *testing.T) {
	got := EVPNRouteReflectorConfig(netip.MustParseAddr("198.18.77.1"), 65000,
		netip.MustParseAddr("198.18.77.2"), netip.MustParseAddr("198.18.77.3"))
	want := `frr defaults datacenter
router bgp 65000
 bgp router-id 198.18.77.1
 no bgp default ipv4-unicast
 neighbor 198.18.77.2 remote-as 65000
 neighbor 198.18.77.3 remote-as 65000
 address-family l2vpn evpn
  neighbor 198.18.77.2 activate
  neighbor 198.18.77.2 route-reflector-client
  neighbor 198.18.77.3 activate
  neighbor 198.18.77.3 route-reflector-client
  advertise-all-vni
 exit-address-family
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
