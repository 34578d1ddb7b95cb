package testns

import (
	"encoding/json"
	"net/netip"
)

// BridgeVNI is one entry of `bridge -j vni show`: a VNI, or a range when
// VNIEnd is set, with the group or remote the kernel reports for it.
type BridgeVNI struct {
	VNI    uint32 `json:"vni"`
	VNIEnd uint32 `json:"vniEnd"`
	Group  string `json:"group"`
	Remote string `json:"remote"`
}

// Addr returns the entry's group or remote, or the zero Addr for none.
func (v BridgeVNI) Addr() netip.Addr {
	a, _ := netip.ParseAddr(v.Group + v.Remote)
	return a
}

// VNIs returns what `bridge -j vni show dev NAME` reports for the VNI
// filtering device dev in the namespace, failing the test if bridge fails.
func (ns *NS) VNIs(dev string) []BridgeVNI {
	ns.t.Helper()
	out, err := ns.Exec("bridge", "-j", "vni", "show", "dev", dev)
	if err != nil {
		ns.t.Fatal(err)
	}
	var devs []struct {
		VNIs []BridgeVNI `json:"vnis"`
	}
	if err := json.Unmarshal([]byte(out), &devs); err != nil {
		ns.t.Fatalf("bridge -j vni show dev %s: %v: %s", dev, err, out)
	}
	var all []BridgeVNI
	for _, d := range devs {
		all = append(all, d.VNIs...)
	}
	return all
}
