package vtepfilter

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// The rule of a network, expression by expression: IPv4, port 4789, VNI
// 0x123456. The VNI is the 3 bytes at 12 of the transport header (8 of UDP
// header, 4 of VXLAN flags and reserved bits), the port the 2 bytes at 2,
// the source the 4 bytes at 12 of the IPv4 header.
func TestRuleExprsIPv4(t *testing.T) {
	n := &Network{Name: "abc", Port: 4789, VNI: 0x123456}
	set := &nftables.Set{Name: "abc_v4", ID: 7}
	want := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2}}, // NFPROTO_IPV4
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{17}}, // UDP
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x12, 0xb5}}, // 4789
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 12, Len: 3},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x12, 0x34, 0x56}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: "abc_v4", SetID: 7, Invert: true},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
	if got := ruleExprs(n, families[0], set); !reflect.DeepEqual(got, want) {
		t.Fatalf("rule:\n%s\nwant:\n%s", dumpExprs(got), dumpExprs(want))
	}
}

// The IPv6 rule differs in the family and in where the source lies: the 16
// bytes at 8 of the IPv6 header.
func TestRuleExprsIPv6(t *testing.T) {
	n := &Network{Name: "abc", Port: 8472, VNI: 1}
	got := ruleExprs(n, families[1], &nftables.Set{Name: "abc_v6"})
	if c := got[1].(*expr.Cmp); !slices.Equal(c.Data, []byte{10}) { // NFPROTO_IPV6
		t.Errorf("nfproto %v, want 10", c.Data)
	}
	if c := got[5].(*expr.Cmp); !slices.Equal(c.Data, []byte{0x21, 0x18}) {
		t.Errorf("port %v, want 8472 (21 18)", c.Data)
	}
	if c := got[7].(*expr.Cmp); !slices.Equal(c.Data, []byte{0, 0, 1}) {
		t.Errorf("VNI %v, want 00 00 01", c.Data)
	}
	if p := got[8].(*expr.Payload); p.Offset != 8 || p.Len != 16 || p.Base != expr.PayloadBaseNetworkHeader {
		t.Errorf("source load %+v, want network header 8, 16 bytes", p)
	}
}

func dumpExprs(es []expr.Any) string {
	s := ""
	for _, e := range es {
		s += fmt.Sprintf("  %T %+v\n", e, e)
	}
	return s
}

func TestCommentRoundTrip(t *testing.T) {
	n := Network{Name: "0123456789ab", Port: 4789, VNI: 16777215}
	got, ok := parseComment(n.comment())
	if !ok || got.Name != n.Name || got.Port != n.Port || got.VNI != n.VNI {
		t.Fatalf("parseComment(%q) = %+v, %v", n.comment(), got, ok)
	}
	for _, bad := range []string{"", "dvp", "dvp x port 1", "dvp x port 70000 vni 1", "other x port 1 vni 1", "dvp x port 1 vni 16777216"} {
		if _, ok := parseComment(bad); ok {
			t.Errorf("parseComment(%q) accepted", bad)
		}
	}
}

func pfx(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Prefixes become interval elements that neither overlap nor touch (the
// kernel refuses those), and read back as the fewest prefixes.
func TestElementsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in, back []netip.Prefix
		elems    int
	}{
		{pfx("198.18.0.1/32"), pfx("198.18.0.1/32"), 2},
		{pfx("198.18.0.2/32", "198.18.0.1/32"), pfx("198.18.0.1/32", "198.18.0.2/32"), 2}, // touching: one range
		{pfx("198.18.0.0/25", "198.18.0.128/25"), pfx("198.18.0.0/24"), 2},
		{pfx("198.18.0.0/16", "198.18.7.9/32"), pfx("198.18.0.0/16"), 2}, // contained
		{pfx("198.18.0.9/32", "198.18.0.7/32"), pfx("198.18.0.7/32", "198.18.0.9/32"), 4},
		{pfx("255.255.255.255/32"), pfx("255.255.255.255/32"), 1}, // ends at the last address: no end element
		{pfx("0.0.0.0/0"), pfx("0.0.0.0/0"), 1},
		{pfx("fd00::1/128", "fd00::/64"), pfx("fd00::/64"), 2},
		{nil, nil, 0},
	} {
		v4, v6 := splitFamilies(tc.in)
		els := append(elements(v4), elements(v6)...)
		if len(els) != tc.elems {
			t.Errorf("%v: %d elements, want %d", tc.in, len(els), tc.elems)
		}
		var back []netip.Prefix
		back = append(back, prefixesOf(elements(v4))...)
		back = append(back, prefixesOf(elements(v6))...)
		if !slices.Equal(back, tc.back) {
			t.Errorf("%v read back as %v, want %v", tc.in, back, tc.back)
		}
	}
}

func TestSplitFamiliesUnmaps(t *testing.T) {
	v4, v6 := splitFamilies(pfx("::ffff:198.18.0.1/128", "fd00::1/128"))
	if !slices.Equal(v4, pfx("198.18.0.1/32")) || !slices.Equal(v6, pfx("fd00::1/128")) {
		t.Fatalf("v4 %v v6 %v", v4, v6)
	}
}

func TestValidate(t *testing.T) {
	for _, n := range []Network{
		{Name: "", Port: 1},
		{Name: "a b", Port: 1},
		{Name: "abcdefghijabcdefghijabcdefghij", Port: 1},
		{Name: "a", Port: 0},
		{Name: "a", Port: 1, VNI: 1 << 24},
		{Name: "a", Port: 1, Allowed: []netip.Prefix{{}}},
	} {
		if err := n.Validate(); err == nil {
			t.Errorf("%+v accepted", n)
		}
	}
	if err := (&Network{Name: "0123abc_-", Port: 4789, VNI: 42}).Validate(); err != nil {
		t.Error(err)
	}
}
