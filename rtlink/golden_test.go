package rtlink

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "recapture testdata/*.hex from the running kernel (needs root)")

// Links whose IFLA_INFO_DATA the kernel dumped, captured into
// testdata/<name>.hex by `go test -run TestVXLANKernelDumps -update`. Each
// was created by iproute2, so the bytes are the kernel's, not ours.
var kernelDumps = []struct {
	name string
	ip   []string // arguments after `ip link add NAME type vxlan`
	want VXLAN
}{
	{
		name: "vxlan-defaults",
		ip:   []string{"id", "5", "dstport", "4789"},
		want: VXLAN{
			ID: Ptr[uint32](5), TTL: Ptr[uint8](0), TOS: Ptr[uint8](0), DF: Ptr[uint8](0),
			Label: Ptr[uint32](0), LabelPolicy: Ptr[uint32](0), Learning: Ptr(true), Proxy: Ptr(false),
			RSC: Ptr(false), L2Miss: Ptr(false), L3Miss: Ptr(false), CollectMetadata: Ptr(false),
			Ageing: Ptr[uint32](300), Limit: Ptr[uint32](0), Port: Ptr[uint16](4789), UDPCSum: Ptr(true),
			UDPZeroCSum6TX: Ptr(false), UDPZeroCSum6RX: Ptr(false), RemCSumTX: Ptr(false), RemCSumRX: Ptr(false),
			LocalBypass: Ptr(true), Ports: &PortRange{}, ReservedBits: &[8]byte{0xf7, 0xff, 0xff, 0xff, 0, 0, 0, 0xff},
		},
	},
	{
		name: "vxlan-ipv4-rich",
		ip: []string{"id", "4242", "group", "239.1.1.1", "dev", "lo", "local", "198.18.1.1", "dstport", "4790",
			"srcport", "5000", "6000", "ttl", "64", "tos", "0x10", "df", "inherit", "proxy", "rsc", "l2miss", "l3miss",
			"nolearning", "ageing", "77", "maxaddress", "100", "gbp", "noudpcsum", "remcsumtx", "remcsumrx"},
		want: VXLAN{
			ID: Ptr[uint32](4242), Group: netip.MustParseAddr("239.1.1.1"), Link: Ptr[uint32](1), Local: netip.MustParseAddr("198.18.1.1"),
			TTL: Ptr[uint8](64), TOS: Ptr[uint8](0x10), DF: Ptr[uint8](2), Label: Ptr[uint32](0), LabelPolicy: Ptr[uint32](0),
			Learning: Ptr(false), Proxy: Ptr(true), RSC: Ptr(true), L2Miss: Ptr(true), L3Miss: Ptr(true),
			CollectMetadata: Ptr(false), Ageing: Ptr[uint32](77), Limit: Ptr[uint32](100), Port: Ptr[uint16](4790),
			UDPCSum: Ptr(false), UDPZeroCSum6TX: Ptr(false), UDPZeroCSum6RX: Ptr(false), RemCSumTX: Ptr(true), RemCSumRX: Ptr(true),
			LocalBypass: Ptr(true), Ports: &PortRange{Low: 5000, High: 6000}, GBP: true,
			ReservedBits: &[8]byte{0x77, 0, 0, 0, 0, 0, 0, 0}, // GBP uses the remaining bits
		},
	},
	{
		name: "vxlan-ipv6",
		ip: []string{"id", "7", "remote", "fd00:1::2", "local", "fd00:1::1", "flowlabel", "0x12345", "ttl", "inherit",
			"udp6zerocsumtx", "udp6zerocsumrx", "dstport", "8472"},
		want: VXLAN{
			ID: Ptr[uint32](7), Group: netip.MustParseAddr("fd00:1::2"), Local: netip.MustParseAddr("fd00:1::1"),
			TTL: Ptr[uint8](0), TTLInherit: true, TOS: Ptr[uint8](0), DF: Ptr[uint8](0), Label: Ptr[uint32](0x12345),
			LabelPolicy: Ptr[uint32](0), Learning: Ptr(true), Proxy: Ptr(false), RSC: Ptr(false), L2Miss: Ptr(false),
			L3Miss: Ptr(false), CollectMetadata: Ptr(false), Ageing: Ptr[uint32](300), Limit: Ptr[uint32](0),
			Port: Ptr[uint16](8472), UDPCSum: Ptr(true), UDPZeroCSum6TX: Ptr(true), UDPZeroCSum6RX: Ptr(true),
			RemCSumTX: Ptr(false), RemCSumRX: Ptr(false), LocalBypass: Ptr(true), Ports: &PortRange{},
			ReservedBits: &[8]byte{0xf7, 0xff, 0xff, 0xff, 0, 0, 0, 0xff},
		},
	},
}

func goldenPath(name string) string { return filepath.Join("testdata", name+".hex") }

// captureInfoData creates the link with iproute2 in a fresh namespace and
// returns the IFLA_INFO_DATA payload of the kernel's dump of it.
func captureInfoData(t *testing.T, args []string) []byte {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("-update needs root")
	}
	ns := "dvp-capture"
	_ = exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	cmd := append([]string{"-n", ns, "link", "add", "vx0", "type", "vxlan"}, args...)
	if out, err := exec.Command("ip", cmd...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", cmd, err, out)
	}
	c, err := Dial(WithNetNSPath(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data, err := c.rawInfoData(context.Background(), "vx0")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rawInfoData returns the IFLA_INFO_DATA bytes of the link called name.
func (c *Conn) rawInfoData(ctx context.Context, name string) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, name)
	attrs, _ := ae.Encode()
	msgs, err := c.execute(ctx, "get link", name, unix.RTM_GETLINK, 0, append(linkHeader(0, 0, 0), attrs...))
	if err != nil {
		return nil, err
	}
	var data []byte
	ad, err := netlink.NewAttributeDecoder(msgs[0].Data[unix.SizeofIfInfomsg:])
	if err != nil {
		return nil, err
	}
	for ad.Next() {
		if ad.Type() == unix.IFLA_LINKINFO {
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() == unix.IFLA_INFO_DATA {
						data = nad.Bytes()
					}
				}
				return nil
			})
		}
	}
	return data, ad.Err()
}

// Decoding the kernel's own bytes gives the expected attributes; in
// particular TTL_INHERIT, which the kernel dumps as a u8 although it only
// accepts it as a flag, and the big-endian PORT and LABEL.
func TestVXLANKernelDumps(t *testing.T) {
	for _, tc := range kernelDumps {
		t.Run(tc.name, func(t *testing.T) {
			if *update {
				b := captureInfoData(t, tc.ip)
				if err := os.WriteFile(goldenPath(tc.name), []byte(hex.EncodeToString(b)+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := os.ReadFile(goldenPath(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
			if err != nil {
				t.Fatal(err)
			}
			var got VXLAN
			ad, err := netlink.NewAttributeDecoder(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := got.decode(ad); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decoded\n%s\nwant\n%s", dumpVXLAN(&got), dumpVXLAN(&tc.want))
			}
			// Every attribute our encoder writes for these settings is,
			// byte for byte, the attribute the kernel reports, except
			// TTL_INHERIT (a flag in, a u8 out).
			enc := encodeAttrs(t, &tc.want)
			kernel := splitTLVs(t, b)
			for typ, tlv := range splitTLVs(t, enc) {
				if typ == unix.IFLA_VXLAN_TTL_INHERIT {
					continue
				}
				if !bytes.Equal(kernel[typ], tlv) {
					t.Errorf("attribute %d: we encode % x, the kernel reports % x", typ, tlv, kernel[typ])
				}
			}
		})
	}
}

func encodeAttrs(t *testing.T, v *VXLAN) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	if err := v.encode(ae); err != nil {
		t.Fatal(err)
	}
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitTLVs returns each attribute's whole TLV (header, payload, padding)
// by type.
func splitTLVs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	out := map[uint16][]byte{}
	for len(b) >= 4 {
		l := int(b[0]) | int(b[1])<<8
		typ := uint16(b[2]) | uint16(b[3])<<8
		padded := (l + 3) &^ 3
		if l < 4 || padded > len(b) {
			t.Fatalf("bad TLV length %d", l)
		}
		out[typ&^unix.NLA_F_NESTED] = b[:padded]
		b = b[padded:]
	}
	return out
}

// dumpVXLAN lists the attributes that are set as "number=value", for
// readable failure messages.
func dumpVXLAN(v *VXLAN) string {
	var parts []string
	for _, a := range v.attrs() {
		val := reflect.ValueOf(a.ptr).Elem()
		if val.Kind() == reflect.Pointer {
			if val.IsNil() {
				continue
			}
			val = val.Elem()
		}
		if val.IsZero() && val.Kind() != reflect.Uint8 && val.Kind() != reflect.Uint16 && val.Kind() != reflect.Uint32 && val.Kind() != reflect.Bool {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d=%v", a.typ, val.Interface()))
	}
	return strings.Join(parts, " ")
}

// Byte-exact encodings of the attributes other libraries get wrong. The
// expected TLVs are those in the kernel dumps above (PORT, LABEL), or the
// NLA_FLAG shape (length 4, no payload) the kernel's policy demands.
func TestVXLANEncodeGolden(t *testing.T) {
	cases := []struct {
		name string
		v    VXLAN
		want string
	}{
		{"ID", VXLAN{ID: Ptr[uint32](5)}, "08000100 05000000"},
		{"PortBigEndian", VXLAN{Port: Ptr[uint16](4789)}, "06000f00 12b50000"},
		{"LabelBigEndian", VXLAN{Label: Ptr[uint32](0x12345)}, "08001a00 00012345"},
		{"GBPFlag", VXLAN{GBP: true}, "04001700"},
		{"RemCSumNoPartialFlag", VXLAN{RemCSumNoPartial: true}, "04001800"},
		{"GPEFlag", VXLAN{GPE: true}, "04001b00"},
		{"TTLInheritFlag", VXLAN{TTLInherit: true}, "04001c00"},
		{"LearningOff", VXLAN{Learning: Ptr(false)}, "05000700 00000000"},
		{"Group4", VXLAN{Group: netip.MustParseAddr("239.1.1.1")}, "08000200 ef010101"},
		{"Group6", VXLAN{Group: netip.MustParseAddr("ff05::1")}, "14001000 ff050000 00000000 00000000 00000001"},
		{"PortRange", VXLAN{Ports: &PortRange{Low: 5000, High: 6000}}, "08000a00 13881770"},
		{"DFInherit", VXLAN{DF: Ptr[uint8](2)}, "05001d00 02000000"},
		{"ReservedBits", VXLAN{ReservedBits: &[8]byte{0xf7, 0xff, 0xff, 0xff, 0, 0, 0, 0xff}}, "0c002100 f7ffffff 000000ff"},
		{"MCRoute", VXLAN{MCRoute: Ptr(true)}, "05002200 01000000"},
		{"Ordered", VXLAN{Port: Ptr[uint16](1), ID: Ptr[uint32](2)}, "08000100 02000000 06000f00 00010000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := hex.DecodeString(strings.ReplaceAll(tc.want, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			if got := encodeAttrs(t, &tc.v); !bytes.Equal(got, want) {
				t.Fatalf("encoded\n% x\nwant\n% x", got, want)
			}
			// And decoding gives back what was encoded.
			var back VXLAN
			ad, _ := netlink.NewAttributeDecoder(want)
			if err := back.decode(ad); err != nil || !reflect.DeepEqual(back, tc.v) {
				t.Fatalf("decoded back %+v, %v", back, err)
			}
		})
	}
}
