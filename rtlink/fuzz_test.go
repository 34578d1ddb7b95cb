package rtlink

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
)

// FuzzDecodeVXLAN feeds arbitrary IFLA_INFO_DATA payloads to the vxlan
// decoder: it must not panic, and whatever it accepts must survive an
// encode/decode round trip unchanged.
func FuzzDecodeVXLAN(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.hex"))
	for _, name := range files {
		raw, _ := os.ReadFile(name)
		if b, err := hex.DecodeString(strings.TrimSpace(string(raw))); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{0x04, 0x00, 0x1c, 0x00})
	f.Add([]byte{0x05, 0x00, 0x1c, 0x00, 0x01, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v VXLAN
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			return
		}
		if v.decode(ad) != nil || ad.Err() != nil {
			return
		}
		ae := netlink.NewAttributeEncoder()
		if err := v.encode(ae); err != nil {
			t.Fatal(err)
		}
		enc, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		var back VXLAN
		ad2, err := netlink.NewAttributeDecoder(enc)
		if err != nil {
			t.Fatal(err)
		}
		if err := back.decode(ad2); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, back) {
			t.Fatalf("round trip changed\n%s\ninto\n%s", dumpVXLAN(&v), dumpVXLAN(&back))
		}
	})
}

// FuzzDecodeLink feeds arbitrary RTM_NEWLINK bodies to the link decoder.
func FuzzDecodeLink(f *testing.F) {
	b, _ := encodeLink(&Link{Name: "vx0", MTU: 1450, Group: 3, Data: &VXLAN{ID: Ptr[uint32](4)}})
	f.Add(b)
	b, _ = encodeLink(&Link{Name: "m0", ParentIndex: 2, Data: &Macvlan{Mode: MacvlanModeBridge}})
	f.Add(b)
	b, _ = encodeLink(&Link{Name: "v0", ParentIndex: 2, Data: &VLAN{ID: 65, Protocol: VLANProtocol8021Q}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := decodeLink(b)
		if err != nil {
			return
		}
		if l.Data == nil {
			return
		}
		l.Up = false
		enc, err := encodeLink(l)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeLink(enc)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v", err)
		}
		if !reflect.DeepEqual(l.Data, back.Data) {
			t.Fatalf("round trip changed %+v into %+v", l.Data, back.Data)
		}
	})
}

// FuzzDecodeNeigh feeds arbitrary RTM_NEWNEIGH bodies to the neighbour
// decoder, checking the round trip of what it accepts.
func FuzzDecodeNeigh(f *testing.F) {
	b, _ := encodeNeigh(&Neigh{Family: FamilyBridge, LinkIndex: 3, State: NUDPermanent, Flags: NTFSelf, MAC: make([]byte, 6), VNI: 9, Port: 4789})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeNeigh(b)
		if err != nil {
			return
		}
		enc, err := encodeNeigh(n)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeNeigh(enc)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v", err)
		}
		if n.String() != back.String() || n.IfIndex != back.IfIndex || n.State != back.State {
			t.Fatalf("round trip changed %+v into %+v", n, back)
		}
	})
}
