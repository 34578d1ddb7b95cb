package fabric

import (
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Every host derives the same gateway MAC for a network from its VNI and
// UDP port alone: a locally administered unicast MAC, another one for
// another VNI or port.
func TestGatewayMAC(t *testing.T) {
	a := &NetworkSpec{ID: "aaaa", VXLAN: vxlan.Config{VNI: 42, Name: "vx_a"}}
	b := &NetworkSpec{ID: "bbbb", VXLAN: vxlan.Config{VNI: 42, Name: "other", Port: vxlan.EffectivePort(0)}}
	mac := a.GatewayMAC()
	if got := b.GatewayMAC(); got.String() != mac.String() {
		t.Fatalf("same VNI and port, other names: %s and %s", mac, got)
	}
	if mac[0]&0x01 != 0 || mac[0]&0x02 == 0 {
		t.Fatalf("%s is not a locally administered unicast MAC", mac)
	}
	seen := map[string]string{mac.String(): "vni 42"}
	for what, s := range map[string]*NetworkSpec{
		"vni 43":            {VXLAN: vxlan.Config{VNI: 43}},
		"vni 42, port 4790": {VXLAN: vxlan.Config{VNI: 42, Port: 4790}},
	} {
		m := s.GatewayMAC().String()
		if other, ok := seen[m]; ok {
			t.Errorf("%s and %s share the gateway MAC %s", what, other, m)
		}
		seen[m] = what
	}
}
