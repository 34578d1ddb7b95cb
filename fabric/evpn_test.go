package fabric

import (
	"errors"
	"strings"
	"testing"
)

// ControlPlane=evpn turns learning off and is refused with what takes its
// place: Peers, Group, Learning=true, a macvlan-mode network.
func TestControlPlaneOption(t *testing.T) {
	s, err := ParseOptions(map[string]string{"VxlanId": "7", "controlplane": "EVPN"})
	if err != nil || s.ControlPlane != ControlPlaneEVPN || s.VXLAN.Learning == nil || *s.VXLAN.Learning {
		t.Fatalf("%+v %v", s, err)
	}
	for _, opts := range []map[string]string{{"VxlanId": "7"}, {"VxlanId": "7", "ControlPlane": "none", "Peers": "198.18.0.2"}} {
		if s, err := ParseOptions(opts); err != nil || s.ControlPlane != ControlPlaneNone || s.VXLAN.Learning != nil {
			t.Fatalf("%v: %+v %v", opts, s, err)
		}
	}
	for _, tc := range []struct {
		opts           map[string]string
		option, says   string
		acceptedSuffix string
	}{
		{map[string]string{"VxlanId": "7", "ControlPlane": "bgp"}, "ControlPlane", "option ControlPlane=bgp: unknown control plane", controlPlaneAccepted},
		{map[string]string{"VxlanId": "7", "ControlPlane": ""}, "ControlPlane", "unknown control plane", controlPlaneAccepted},
		{map[string]string{"VxlanId": "7", "ControlPlane": "evpn", "peers": "198.18.0.2"}, "peers", "option peers=198.18.0.2: not with ControlPlane=evpn: the routing daemon installs the remote VTEPs", "no Peers with ControlPlane=evpn"},
		{map[string]string{"VxlanId": "7", "ControlPlane": "evpn", "Group": "239.1.1.1"}, "Group", "option Group=239.1.1.1: not with ControlPlane=evpn: broadcast goes by head-end replication", "no Group with ControlPlane=evpn"},
		{map[string]string{"VxlanId": "7", "ControlPlane": "evpn", "Learning": "true"}, "Learning", "option Learning=true: contradicts ControlPlane=evpn", "false, or no Learning, with ControlPlane=evpn"},
		{map[string]string{"VxlanId": "7", "ControlPlane": "evpn", "mode": "macvlan"}, "ControlPlane", "option ControlPlane=evpn: not for a network of kind vxlan, mode=macvlan: BGP EVPN needs the vxlan link to be a bridge port: FRR's zebra hands a VNI to bgpd only when its vxlan link has a bridge master", "networks of kind vxlan, bridge mode"},
		{map[string]string{"ControlPlane": "evpn", "parent": "eth0"}, "ControlPlane", "not for a network of kind parent (no VxlanId)", "networks of kind vxlan, bridge mode"},
	} {
		_, err := ParseOptions(tc.opts)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Option != tc.option || !strings.Contains(err.Error(), tc.says) || !strings.HasSuffix(err.Error(), "; accepted: "+tc.acceptedSuffix) {
			t.Errorf("%v: %v; want option %s saying %q", tc.opts, err, tc.option, tc.says)
		}
	}
	if s, err := ParseOptions(map[string]string{"VxlanId": "7", "ControlPlane": "evpn", "Learning": "false"}); err != nil || *s.VXLAN.Learning {
		t.Fatalf("Learning=false with evpn: %+v %v", s, err)
	}
}
