package linuxhost

import (
	"net/netip"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// A released vxlan link holds what a new one needs when it has the same
// VNI on the same port, or the same port with receive flags the kernel
// will not share a socket with, in a family both open.
func TestPendingLinkHolds(t *testing.T) {
	v6 := netip.MustParseAddr("fd00::1")
	for _, c := range []struct {
		name     string
		old, new vxlan.Config
		want     bool
	}{
		{"same flags, other VNI", vxlan.Config{VNI: 1}, vxlan.Config{VNI: 2}, false},
		{"same VNI and port", vxlan.Config{VNI: 1}, vxlan.Config{VNI: 1}, true},
		{"same VNI, other port", vxlan.Config{VNI: 1}, vxlan.Config{VNI: 1, Port: 4790}, false},
		{"GBP against plain", vxlan.Config{VNI: 1, GBP: true}, vxlan.Config{VNI: 2}, true},
		{"GBP against plain, default port given", vxlan.Config{VNI: 1, GBP: true, Port: 4789}, vxlan.Config{VNI: 2}, true},
		{"GBP against plain, other port", vxlan.Config{VNI: 1, GBP: true}, vxlan.Config{VNI: 2, Port: 4790}, false},
		{"RCO receive against plain", vxlan.Config{VNI: 1, RemoteChecksumRX: true}, vxlan.Config{VNI: 2}, true},
		{"RCO send only: not a receive flag", vxlan.Config{VNI: 1, RemoteChecksumTX: true}, vxlan.Config{VNI: 2}, false},
		{"GBP on IPv6 against plain IPv4", vxlan.Config{VNI: 1, GBP: true, Local: v6}, vxlan.Config{VNI: 2}, false},
		{"metadata opens both families", vxlan.Config{VNI: 1, CollectMetadata: true}, vxlan.Config{VNI: 2, Local: v6}, true},
		{"socket in another namespace", vxlan.Config{VNI: 1, GBP: true, LinkNetNSID: vxlan.Ptr(int32(1))}, vxlan.Config{VNI: 2}, false},
	} {
		if got := pendingVXLAN(&c.old).holds(&c.new); got != c.want {
			t.Errorf("%s: holds %v, want %v", c.name, got, c.want)
		}
	}
}
