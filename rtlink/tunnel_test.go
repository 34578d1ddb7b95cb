package rtlink

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Byte-exact RTM_NEWTUNNEL / RTM_DELTUNNEL bodies, laid out as iproute2's
// `bridge vni add` sends them: a tunnel_msg of family AF_BRIDGE (7) with the
// ifindex, then one nested VXLAN_VNIFILTER_ENTRY (type 1 | NLA_F_NESTED) per
// VNI or range, holding START (1), END (2) only for a range, and GROUP (3)
// or GROUP6 (4).
func TestTunnelEncodeGolden(t *testing.T) {
	const hdr = "07000000 05000000" // AF_BRIDGE, flags 0, reserved, ifindex 5
	cases := []struct {
		name    string
		entries []VNIFilterEntry
		want    string
	}{
		{"Single", []VNIFilterEntry{{Start: 10}}, hdr + "0c000180 08000100 0a000000"},
		{"Range", []VNIFilterEntry{{Start: 20, End: 29}}, hdr + "14000180 08000100 14000000 08000200 1d000000"},
		{"Group4", []VNIFilterEntry{{Start: 30, Group: netip.MustParseAddr("239.1.1.30")}}, hdr + "14000180 08000100 1e000000 08000300 ef01011e"},
		{"Group6", []VNIFilterEntry{{Start: 40, Group: netip.MustParseAddr("ff05::28")}},
			hdr + "20000180 08000100 28000000 14000400 ff050000 00000000 00000000 00000028"},
		{"MaxVNI", []VNIFilterEntry{{Start: 1<<24 - 1}}, hdr + "0c000180 08000100 ffffff00"},
		{"Several", []VNIFilterEntry{{Start: 10}, {Start: 20, End: 29}},
			hdr + "0c000180 08000100 0a000000 14000180 08000100 14000000 08000200 1d000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encodeTunnel(5, tc.entries)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tc.want); !bytes.Equal(got, want) {
				t.Fatalf("encoded\n% x\nwant\n% x", got, want)
			}
			index, back, err := decodeTunnel(got)
			if err != nil || index != 5 || !reflect.DeepEqual(back, tc.entries) {
				t.Fatalf("decoded back index %d, %+v, %v", index, back, err)
			}
		})
	}
}

// IFLA_VXLAN_VNIFILTER, which makes a collect-metadata vxlan a VNI filtering
// one, is an NLA_U8 in the kernel's vxlan_policy (not a flag), as iproute2's
// addattr8 sends it.
func TestVNIFilterLinkAttribute(t *testing.T) {
	if got, want := encodeAttrs(t, &VXLAN{VNIFilter: Ptr(true)}), unhex(t, "05001e00 01000000"); !bytes.Equal(got, want) {
		t.Fatalf("encoded % x, want % x", got, want)
	}
}

// A dump reply as vxlan_vnifilter_dump_dev builds it: the kernel's nests
// carry NLA_F_NESTED, a single VNI has no END, and the statistics are u64
// attributes, possibly preceded by VNIFILTER_ENTRY_STATS_PAD (9) on
// architectures that align them.
func TestTunnelDecodeKernelReply(t *testing.T) {
	stats := "50000580" + // VXLAN_VNIFILTER_ENTRY_STATS, nested: 6 u64s and a pad
		"0c000100 e8030000 00000000" + "0c000200 0a000000 00000000" + // rx bytes 1000, pkts 10
		"0c000300 01000000 00000000" + "0c000400 02000000 00000000" +
		"0c000500 d0070000 00000000" + "0c000600 14000000 00000000" +
		"04000900" // a pad attribute before the last counter, skipped
	body := "07000000 09000000" +
		"0c000180 08000100 0a000000" + // 10
		"14000180 08000100 14000000 08000200 1d000000" + // 20-29
		"14000180 08000100 1e000000 08000300 ef01011e" + // 30 group 239.1.1.30
		"14000180 08000100 28000000 08000300 00000000" // 40, group 0.0.0.0: none
	index, got, err := decodeTunnel(unhex(t, body))
	want := []VNIFilterEntry{{Start: 10}, {Start: 20, End: 29}, {Start: 30, Group: netip.MustParseAddr("239.1.1.30")}, {Start: 40}}
	if err != nil || index != 9 || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded index %d, %+v, %v", index, got, err)
	}

	// With TUNNEL_MSG_FLAG_STATS.
	_, got, err = decodeTunnel(unhex(t, "07000000 09000000 "+"5c000180 08000100 0a000000 "+stats))
	wantStats := &VNIStats{RxBytes: 1000, RxPackets: 10, RxDrops: 1, RxErrors: 2, TxBytes: 2000, TxPackets: 20}
	if err != nil || len(got) != 1 || got[0].Start != 10 || !reflect.DeepEqual(got[0].Stats, wantStats) {
		t.Fatalf("decoded %+v (stats %+v), %v", got, got[0].Stats, err)
	}
}

func TestTunnelDecodeMalformed(t *testing.T) {
	for name, body := range map[string]string{
		"short header":  "07000000",
		"not AF_BRIDGE": "02000000 01000000",
		"short START":   "07000000 01000000 08000180 04000100",
		"group of 3":    "07000000 01000000 10000180 08000100 01000000 07000300 01020300",
		"group6 of 4":   "07000000 01000000 14000180 08000100 01000000 08000400 01020304",
	} {
		t.Run(name, func(t *testing.T) {
			if _, got, err := decodeTunnel(unhex(t, body)); err == nil {
				t.Fatalf("decoded %+v without error", got)
			}
		})
	}
}

// The requests carry the right message types and flags, and the dump asks
// for statistics only when told to.
func TestTunnelRequests(t *testing.T) {
	c, seen := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		if reqs[0].Header.Type == unix.RTM_GETTUNNEL {
			body, _ := encodeTunnel(3, []VNIFilterEntry{{Start: 7}})
			other, _ := encodeTunnel(4, []VNIFilterEntry{{Start: 8}})
			h := netlink.Header{Type: unix.RTM_NEWTUNNEL, Sequence: reqs[0].Header.Sequence, PID: reqs[0].Header.PID}
			return []netlink.Message{
				{Header: h, Data: body},
				{Header: h, Data: other}, // another device: dropped
			}, nil
		}
		return nltest.Error(0, reqs)
	})
	ctx := context.Background()
	if err := c.AddVNIFilter(ctx, 3, []VNIFilterEntry{{Start: 7}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteVNIFilter(ctx, 3, []VNIFilterEntry{{Start: 7}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.VNIFilter(ctx, 3, true)
	if err != nil || !reflect.DeepEqual(got, []VNIFilterEntry{{Start: 7}}) {
		t.Fatalf("VNIFilter = %+v, %v", got, err)
	}
	want := []struct {
		typ   netlink.HeaderType
		flags netlink.HeaderFlags
		tflag byte
	}{
		{unix.RTM_NEWTUNNEL, netlink.Request | netlink.Acknowledge, 0},
		{unix.RTM_DELTUNNEL, netlink.Request | netlink.Acknowledge, 0},
		{unix.RTM_GETTUNNEL, netlink.Request | netlink.Dump, tunnelMsgFlagStats},
	}
	if len(*seen) != len(want) {
		t.Fatalf("%d requests, want %d", len(*seen), len(want))
	}
	for i, m := range *seen {
		if m.Header.Type != want[i].typ || m.Header.Flags != want[i].flags || m.Data[0] != unix.AF_BRIDGE || m.Data[1] != want[i].tflag {
			t.Errorf("request %d: type %d flags %v body % x", i, m.Header.Type, m.Header.Flags, m.Data)
		}
	}
}

// Nothing is sent for an empty list or a zero index.
func TestTunnelRefusesEmptyRequests(t *testing.T) {
	c, seen := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) { return nltest.Error(0, reqs) })
	ctx := context.Background()
	if err := c.AddVNIFilter(ctx, 3, nil); err == nil || !strings.Contains(err.Error(), "no VNIs") {
		t.Fatalf("AddVNIFilter(nil) = %v", err)
	}
	if _, err := c.VNIFilter(ctx, 0, false); err == nil {
		t.Fatal("VNIFilter(0) succeeded")
	}
	if len(*seen) != 0 {
		t.Fatalf("%d requests sent", len(*seen))
	}
}

// ENOMEM, which the kernel returns when it cannot allocate a VNI node, is
// not something a test can provoke: it reaches the caller with the
// operation and the device.
func TestTunnelKernelErrorNamesOperation(t *testing.T) {
	c, _ := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) { return nltest.Error(int(unix.ENOMEM), reqs) })
	err := c.AddVNIFilter(context.Background(), 3, []VNIFilterEntry{{Start: 7}})
	var op *OpError
	if !errors.Is(err, unix.ENOMEM) || !errors.As(err, &op) || op.Op != "add vni" || op.Link != "index 3" {
		t.Fatalf("err = %v", err)
	}
}

// FuzzDecodeTunnel feeds arbitrary tunnel message bodies to the decoder:
// it must not panic, and the entries it accepts, statistics aside, must
// survive an encode/decode round trip unchanged.
func FuzzDecodeTunnel(f *testing.F) {
	for _, s := range []string{
		"07000000 09000000 0c000180 08000100 0a000000 14000180 08000100 14000000 08000200 1d000000",
		"07000000 09000000 14000180 08000100 1e000000 08000300 ef01011e",
		"07000000 09000000 20000180 08000100 28000000 14000400 ff050000 00000000 00000000 00000028",
		"07000000 09000000 1c000180 08000100 0a000000 10000580 0c000100 e8030000 00000000",
		"07000000 09000000 20000180 08000100 28000000 14000400 00000000 00000000 0000ffff c6120001", // IPv4-mapped
	} {
		b, _ := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		index, entries, err := decodeTunnel(b)
		if err != nil {
			return
		}
		for i := range entries {
			entries[i].Stats = nil
		}
		enc, err := encodeTunnel(index, entries)
		if err != nil {
			t.Fatal(err)
		}
		index2, back, err := decodeTunnel(enc)
		if err != nil || index2 != index || !reflect.DeepEqual(back, entries) {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, entries)
		}
	})
}
