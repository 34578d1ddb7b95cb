package rtlink

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/netfault"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// The request body is byte for byte what iproute2's `bridge link set`
// sends: an AF_BRIDGE ifinfomsg, then IFLA_PROTINFO with NLA_F_NESTED
// (0x800c) around one-byte IFLA_BRPORT_* attributes in attribute order.
func TestEncodeBridgePortSet(t *testing.T) {
	const hdr = "07000000" + "06000000" + "00000000" + "00000000" // family AF_BRIDGE, index 6, flags, change
	cases := []struct {
		name string
		port BridgePort
		want string
	}{
		{"nothing set", BridgePort{}, hdr + "0400" + "0c80"},
		{"evpn vxlan port", BridgePort{Learning: Ptr(false), NeighSuppress: Ptr(true)}, hdr + "14000c80" +
			"0500" + "0800" + "00000000" + // IFLA_BRPORT_LEARNING off
			"0500" + "2000" + "01000000"}, // IFLA_BRPORT_NEIGH_SUPPRESS on
		{"every flag", BridgePort{
			Hairpin: Ptr(true), Guard: Ptr(false), RootBlock: Ptr(true), FastLeave: Ptr(false),
			Learning: Ptr(true), UnicastFlood: Ptr(false), ProxyARP: Ptr(true), ProxyARPWiFi: Ptr(false),
			MulticastFlood: Ptr(true), MulticastToUnicast: Ptr(false), BroadcastFlood: Ptr(true),
			NeighSuppress: Ptr(false), Isolated: Ptr(true),
		}, hdr + "6c000c80" +
			"0500040001000000" + // MODE (hairpin)
			"0500050000000000" + // GUARD
			"0500060001000000" + // PROTECT (root_block)
			"0500070000000000" + // FAST_LEAVE
			"0500080001000000" + // LEARNING
			"0500090000000000" + // UNICAST_FLOOD
			"05000a0001000000" + // PROXYARP
			"05000c0000000000" + // PROXYARP_WIFI
			"05001b0001000000" + // MCAST_FLOOD
			"05001c0000000000" + // MCAST_TO_UCAST
			"05001e0001000000" + // BCAST_FLOOD
			"0500200000000000" + // NEIGH_SUPPRESS
			"0500210001000000"}, // ISOLATED
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encodeBridgePortSet(6, &tc.port)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tc.want {
				t.Fatalf("encoded\n got %x\nwant %s", got, tc.want)
			}
		})
	}
}

// kernelPortDump is one message of an AF_BRIDGE RTM_GETLINK dump from kernel
// 6.18: port "c" (index 6, veth, of bridge index 3) after `bridge link set
// dev c learning off neigh_suppress on flood off hairpin on isolated on`
// and `ip link set dev c type bridge_slave proxy_arp on`. The bytes are the
// kernel's, with its STP identifiers, timers (64-bit, padded) and counters.
const kernelPortDump = "07000100060000004310010000000000060003006300000008000a000300000008000400dc05000005001000060000000a00010016a090b1b8640000080005000500000050010c80050001000300000006000200200000000800030002000000050004000100000005000500000000000500060000000000050007000000000005001c00000000000500080000000000050009000000000005001b000100000005001e000100000005000a000100000005000c00000000000c000d00800016a090b1b8640c000e00800016a090b1b86406000f00028000000600100000000000060011000280000006001200020000000500130000000000050014000000000005001d000000000006001f000000000005002000010000000500230000000000050024000000000005002100010000000500270000000000050028000000000005002b00000000000c00150000000000000000000c00160000000000000000000c0017000000000000000000050019000100000008002500000200000800260000000000080029000100000008002a0000000000"

func TestDecodeBridgePortKernelDump(t *testing.T) {
	b, _ := hex.DecodeString(kernelPortDump)
	got, err := decodeBridgePortLink(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &BridgePortLink{Index: 6, Name: "c", MasterIndex: 3, Port: BridgePort{
		Hairpin: Ptr(true), Guard: Ptr(false), RootBlock: Ptr(false), FastLeave: Ptr(false),
		Learning: Ptr(false), UnicastFlood: Ptr(false), ProxyARP: Ptr(true), ProxyARPWiFi: Ptr(false),
		MulticastFlood: Ptr(true), MulticastToUnicast: Ptr(false), BroadcastFlood: Ptr(true),
		NeighSuppress: Ptr(true), Isolated: Ptr(true),
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %s\nwant    %s", got.Port, want.Port)
	}
}

// String renders the flags for test failures: name=on/off, "-" for unset.
func (p BridgePort) String() string {
	v := reflect.ValueOf(p)
	var parts []string
	for i := 0; i < v.NumField(); i++ {
		s := "-"
		if f := v.Field(i); !f.IsNil() {
			s = map[bool]string{true: "on", false: "off"}[f.Elem().Bool()]
		}
		parts = append(parts, v.Type().Field(i).Name+"="+s)
	}
	return strings.Join(parts, " ")
}

// reply answers a request with one RTM_NEWLINK message.
func reply(req netlink.Message, body []byte) []netlink.Message {
	return []netlink.Message{{Header: netlink.Header{Type: unix.RTM_NEWLINK, Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: body}}
}

// linkReply is an AF_UNSPEC link message for index 6 named "c", with the
// given extra attributes.
func linkReply(attrs ...netlink.Attribute) []byte {
	return append(linkHeader(6, 0, 0), nltest.MustMarshalAttributes(append([]netlink.Attribute{
		{Type: unix.IFLA_IFNAME, Data: []byte("c\x00")},
	}, attrs...))...)
}

// SetBridgePort looks the port up by name, then sends the AF_BRIDGE
// RTM_SETLINK with the port's index, asking for an acknowledgement.
func TestSetBridgePortRequests(t *testing.T) {
	master := netlink.Attribute{Type: unix.IFLA_MASTER, Data: binary.NativeEndian.AppendUint32(nil, 3)}
	c, seen := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		if reqs[0].Header.Type == unix.RTM_GETLINK {
			return reply(reqs[0], linkReply(master)), nil
		}
		return nltest.Error(0, reqs)
	})
	p := &BridgePort{Learning: Ptr(false), NeighSuppress: Ptr(true)}
	if err := c.SetBridgePort(context.Background(), "c", p); err != nil {
		t.Fatal(err)
	}
	if len(*seen) != 2 {
		t.Fatalf("%d requests, want get link then set", len(*seen))
	}
	set := (*seen)[1]
	want, _ := encodeBridgePortSet(6, p)
	if set.Header.Type != unix.RTM_SETLINK || set.Header.Flags != netlink.Request|netlink.Acknowledge || hex.EncodeToString(set.Data) != hex.EncodeToString(want) {
		t.Fatalf("set request %+v %x, want RTM_SETLINK request|ack %x", set.Header, set.Data, want)
	}
}

// A link without a master, a nil BridgePort and an interceptor's error all
// fail before the change is sent, naming the operation and the link.
func TestSetBridgePortRefusals(t *testing.T) {
	c, seen := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		return reply(reqs[0], linkReply()), nil // no IFLA_MASTER
	})
	err := c.SetBridgePort(context.Background(), "c", &BridgePort{Learning: Ptr(false)})
	if !errors.Is(err, ErrNotBridgePort) || !strings.Contains(err.Error(), "set bridge port c") || len(*seen) != 1 {
		t.Fatalf("no master: err = %v after %d requests", err, len(*seen))
	}
	if err := c.SetBridgePort(context.Background(), "c", nil); err == nil || !strings.Contains(err.Error(), "BridgePort is nil") || len(*seen) != 1 {
		t.Fatalf("nil: err = %v after %d requests", err, len(*seen))
	}

	c, seen = fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		return reply(reqs[0], linkReply(netlink.Attribute{Type: unix.IFLA_MASTER, Data: binary.NativeEndian.AppendUint32(nil, 3)})), nil
	})
	c.intercept = func(r netfault.Request) error {
		if r.Op == "set bridge port" && r.Changes {
			return errors.New("injected")
		}
		return nil
	}
	err = c.SetBridgePort(context.Background(), "c", &BridgePort{Learning: Ptr(false)})
	if err == nil || !strings.Contains(err.Error(), "set bridge port c: injected") || len(*seen) != 1 {
		t.Fatalf("interceptor: err = %v after %d requests", err, len(*seen))
	}
}

// BridgePort reads the flags from IFLA_INFO_SLAVE_DATA of a plain link
// get; a link with no bridge slave data is ErrNotBridgePort.
func TestBridgePortFromSlaveData(t *testing.T) {
	slave := func(kind string) netlink.Attribute {
		return netlink.Attribute{Type: unix.IFLA_LINKINFO, Data: nltest.MustMarshalAttributes([]netlink.Attribute{
			{Type: unix.IFLA_INFO_KIND, Data: []byte("veth\x00")},
			{Type: unix.IFLA_INFO_SLAVE_KIND, Data: []byte(kind + "\x00")},
			{Type: unix.IFLA_INFO_SLAVE_DATA, Data: nltest.MustMarshalAttributes([]netlink.Attribute{
				{Type: unix.IFLA_BRPORT_STATE, Data: []byte{3}},
				{Type: unix.IFLA_BRPORT_LEARNING, Data: []byte{0}},
				{Type: unix.IFLA_BRPORT_NEIGH_SUPPRESS, Data: []byte{1}},
			})},
		})}
	}
	bodies := map[string][]byte{"bridge": linkReply(slave("bridge")), "bond": linkReply(slave("bond")), "none": linkReply()}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			c, _ := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) { return reply(reqs[0], body), nil })
			p, err := c.BridgePort(context.Background(), "c")
			if name != "bridge" {
				if !errors.Is(err, ErrNotBridgePort) || !strings.Contains(err.Error(), "get bridge port c") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			want := &BridgePort{Learning: Ptr(false), NeighSuppress: Ptr(true)}
			if err != nil || !reflect.DeepEqual(p, want) {
				t.Fatalf("got %v, %v", p, err)
			}
		})
	}
}

// A flag attribute of the wrong length is an error, not a guess.
func TestDecodeBridgePortMalformed(t *testing.T) {
	body := append(bridgeLinkHeader(6), nltest.MustMarshalAttributes([]netlink.Attribute{
		{Type: unix.IFLA_PROTINFO | netlink.Nested, Data: nltest.MustMarshalAttributes([]netlink.Attribute{
			{Type: unix.IFLA_BRPORT_LEARNING, Data: []byte{1, 0}},
		})},
	})...)
	if _, err := decodeBridgePortLink(body); err == nil {
		t.Fatal("two-byte IFLA_BRPORT_LEARNING decoded without error")
	}
	if _, err := decodeBridgePortLink([]byte{7, 0}); err == nil {
		t.Fatal("short header decoded without error")
	}
}

// FuzzDecodeBridgePort feeds AF_BRIDGE dump messages to the decoder: it
// must not panic, and what it decodes must encode and decode to the same
// flags.
func FuzzDecodeBridgePort(f *testing.F) {
	b, _ := hex.DecodeString(kernelPortDump)
	f.Add(b)
	f.Add(bridgeLinkHeader(1))
	f.Fuzz(func(t *testing.T, b []byte) {
		pl, err := decodeBridgePortLink(b)
		if err != nil || pl == nil {
			return
		}
		enc, err := encodeBridgePortSet(pl.Index, &pl.Port)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeBridgePortLink(enc)
		if err != nil || again == nil || !reflect.DeepEqual(again.Port, pl.Port) {
			t.Fatalf("round trip: %v, %v; was %v", again, err, pl.Port)
		}
	})
}
