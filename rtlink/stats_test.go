package rtlink

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// stats64Payload is an IFLA_STATS64 payload of n counters, counter i
// holding 1000+i.
func stats64Payload(n int) []byte {
	b := make([]byte, 8*n)
	for i := range n {
		binary.NativeEndian.PutUint64(b[8*i:], uint64(1000+i))
	}
	return b
}

// linkMessage is an RTM_NEWLINK body for index 7 called name, with an
// IFLA_STATS64 of stats unless it is nil.
func linkMessage(name string, stats []byte) []byte {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, name)
	ae.Uint32(unix.IFLA_MTU, 1450)
	if stats != nil {
		ae.Bytes(unix.IFLA_STATS64, stats)
	}
	attrs, err := ae.Encode()
	if err != nil {
		panic(err) // a name and two fixed attributes always encode
	}
	return append(linkHeader(7, 0, 0), attrs...)
}

func TestDecodeLinkCounters(t *testing.T) {
	for _, n := range []int{minStats64Fields, 24, 25, 26} { // Linux 2.6.35, 4.6, 5.19, a later one
		lc, err := decodeLinkCounters(linkMessage("vx_abc", stats64Payload(n)))
		if err != nil {
			t.Fatalf("%d counters: %v", n, err)
		}
		if lc.Index != 7 || lc.Name != "vx_abc" {
			t.Fatalf("%d counters: index %d name %q, want 7 vx_abc", n, lc.Index, lc.Name)
		}
		s := lc.Stats
		if s.RxPackets != 1000 || s.TxPackets != 1001 || s.RxBytes != 1002 || s.TxBytes != 1003 || s.RxErrors != 1004 ||
			s.TxErrors != 1005 || s.RxDropped != 1006 || s.TxDropped != 1007 || s.Multicast != 1008 || s.TxCompressed != 1022 {
			t.Fatalf("%d counters: decoded %+v", n, s)
		}
		wantNoHandler, wantOtherhost := uint64(0), uint64(0)
		if n > 23 {
			wantNoHandler = 1023
		}
		if n > 24 {
			wantOtherhost = 1024
		}
		if s.RxNoHandler != wantNoHandler || s.RxOtherhostDropped != wantOtherhost {
			t.Fatalf("%d counters: RxNoHandler %d RxOtherhostDropped %d, want %d %d", n, s.RxNoHandler, s.RxOtherhostDropped, wantNoHandler, wantOtherhost)
		}
	}
}

func TestDecodeLinkCountersRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stats []byte
		want  string
	}{
		{"no stats", nil, "no IFLA_STATS64"},
		{"short", stats64Payload(10), "at least 184"},
		{"ragged", append(stats64Payload(23), 1, 2, 3), "multiple of 8"},
	} {
		_, err := decodeLinkCounters(linkMessage("vx_x", tc.stats))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"vx_x"`) {
			t.Errorf("%s: %v, want an error naming the link and saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := decodeLinkCounters(make([]byte, 4)); err == nil {
		t.Error("a message shorter than its header was accepted")
	}
}

// FuzzDecodeLinkCounters: any message must decode or be refused, never
// panic, and an accepted IFLA_STATS64 re-encodes to its own first bytes.
func FuzzDecodeLinkCounters(f *testing.F) {
	f.Add(linkMessage("vx_a", stats64Payload(24)))
	f.Add(linkMessage("vx_a", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		lc, err := decodeLinkCounters(b)
		if err != nil {
			return
		}
		var raw []byte
		_ = walkAttributes(b[unix.SizeofIfInfomsg:], func(typ uint16, data []byte) error {
			if typ == unix.IFLA_STATS64 {
				raw = data
			}
			return nil
		})
		for i, f := range lc.Stats.fields() {
			if 8*i+8 <= len(raw) && *f != binary.NativeEndian.Uint64(raw[8*i:]) {
				t.Fatalf("counter %d: decoded %d, payload holds %d", i, *f, binary.NativeEndian.Uint64(raw[8*i:]))
			}
		}
	})
}
