package rtlink

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// Byte-exact encodings of whole link requests for the kinds other than
// vxlan. The 802.1Q request cannot be checked against this machine's kernel,
// which lacks the 8021q module; its attributes follow if_link.h: IFLA_VLAN_ID
// is a native-endian u16, IFLA_VLAN_PROTOCOL a big-endian u16.
func TestLinkEncodeGolden(t *testing.T) {
	hdr := "00000000 00000000 00000000 00000000 " // ifinfomsg, nothing set
	cases := []struct {
		name string
		l    Link
		want string
	}{
		{"vlan", Link{Name: "eth0.65", ParentIndex: 2, Data: &VLAN{ID: 65, Protocol: VLANProtocol8021Q}},
			hdr + "0c000300 65746830 2e363500 " + // IFLA_IFNAME "eth0.65"
				"08000500 02000000 " + // IFLA_LINK 2
				"24001280 09000100 766c616e 00000000 " + // IFLA_LINKINFO { KIND "vlan"
				"14000280 06000100 41000000 06000500 81000000"}, // DATA { ID 65, PROTOCOL 0x8100 } }
		{"vlan-8021ad", Link{Name: "v", ParentIndex: 2, Data: &VLAN{ID: 4094, Protocol: VLANProtocol8021AD}},
			hdr + "06000300 76000000 08000500 02000000 24001280 09000100 766c616e 00000000 14000280 06000100 fe0f0000 06000500 88a80000"},
		{"macvlan-bridge", Link{Name: "m", ParentIndex: 3, Data: &Macvlan{Mode: MacvlanModeBridge}},
			hdr + "06000300 6d000000 08000500 03000000 1c001280 0c000100 6d616376 6c616e00 0c000280 08000100 04000000"},
		{"bridge-up-mtu", Link{Name: "br", MTU: 1400, Up: true, Data: &Bridge{}},
			"00000000 00000000 01000000 01000000 07000300 62720000 08000400 78050000 14001280 0b000100 62726964 67650000 04000280"},
		{"veth-peer", Link{Name: "a", Data: &Veth{PeerName: "b"}},
			hdr + "06000300 61000000 30001280 09000100 76657468 00000000 20000280 1c000100 " + hdr + "06000300 62000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := hex.DecodeString(strings.ReplaceAll(tc.want, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeLink(&tc.l)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n% x\nwant\n% x", got, want)
			}
			back, err := decodeLink(got)
			if err != nil {
				t.Fatal(err)
			}
			if back.Name != tc.l.Name || back.ParentIndex != tc.l.ParentIndex || back.Kind != tc.l.Data.Kind() {
				t.Fatalf("decoded back %+v", back)
			}
			if v, ok := tc.l.Data.(*VLAN); ok && *back.Data.(*VLAN) != *v {
				t.Fatalf("vlan decoded back %+v", back.Data)
			}
		})
	}
}
