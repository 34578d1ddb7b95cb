package vxlan

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

func TestVNIRangeString(t *testing.T) {
	for r, want := range map[VNIRange]string{
		{First: 10}:           "10",
		{First: 10, Last: 10}: "10",
		{First: 20, Last: 29}: "20-29",
		{First: 30, Group: netip.MustParseAddr("239.1.1.30")}:        "30 group 239.1.1.30",
		{First: 31, Last: 32, Group: netip.MustParseAddr("fd00::2")}: "31-32 remote fd00::2",
	} {
		if got := r.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", r, got, want)
		}
	}
}

// A single VNI is sent without END, as iproute2 sends it, also when Last
// repeats First.
func TestVNIRangeEntry(t *testing.T) {
	for r, want := range map[VNIRange]rtlink.VNIFilterEntry{
		{First: 10}:           {Start: 10},
		{First: 10, Last: 10}: {Start: 10},
		{First: 20, Last: 29}: {Start: 20, End: 29},
	} {
		if got := r.entry(); got != want {
			t.Errorf("%+v.entry() = %+v, want %+v", r, got, want)
		}
	}
}

// The undo of a half-applied AddVNI sends runs of consecutive VNIs.
func TestAppendVNIRuns(t *testing.T) {
	g := netip.MustParseAddr("239.1.1.1")
	var es []rtlink.VNIFilterEntry
	for _, v := range []uint32{20, 22, 23, 24} {
		es = appendVNI(es, v, netip.Addr{})
	}
	es = appendVNI(es, 25, g)
	want := []rtlink.VNIFilterEntry{{Start: 20}, {Start: 22, End: 24}, {Start: 25, Group: g}}
	if len(es) != len(want) || es[0] != want[0] || es[1] != want[1] || es[2] != want[2] {
		t.Fatalf("runs %+v, want %+v", es, want)
	}
	if g2, ok := lookupVNI(es, 23); !ok || g2.IsValid() {
		t.Fatalf("lookupVNI(23) = %v, %v", g2, ok)
	}
	if _, ok := lookupVNI(es, 21); ok {
		t.Fatal("lookupVNI(21) found a VNI that is not there")
	}
}

func TestNeighStateString(t *testing.T) {
	for s, want := range map[NeighState]string{
		0:                              "none",
		NeighPermanent:                 "permanent",
		NeighReachable:                 "reachable",
		NeighStale | NeighNoARP:        "stale,noarp",
		NeighFailed:                    "failed",
		NeighState(0x100) | NeighProbe: "probe,0x100",
	} {
		if got := s.String(); got != want {
			t.Errorf("NeighState(%#x).String() = %q, want %q", uint16(s), got, want)
		}
	}
	if NeighStale.Answers() || !NeighPermanent.Answers() || !NeighReachable.Answers() {
		t.Error("Answers() disagrees with the kernel's NUD_CONNECTED")
	}
}

// Overlapping requests give each carried VNI once, in order, so a delete
// never names a VNI twice (the kernel would stop at the second with ENOENT).
func TestCarriedMergesOverlaps(t *testing.T) {
	have := []rtlink.VNIFilterEntry{{Start: 10}, {Start: 20, End: 22}, {Start: 26, End: 29}, {Start: 30}}
	got := carried([]VNIRange{{First: 25}, {First: 20, Last: 29}, {First: 21}, {First: 30, Last: 40}, {First: 5, Last: 9}}, have)
	want := []span{{20, 22}, {26, 30}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("carried = %v, want %v", got, want)
	}
	for v, in := range map[uint32]bool{9: false, 10: true, 11: false, 20: true, 22: true, 23: false, 29: true, 30: true, 31: false} {
		if _, ok := lookupVNI(have, v); ok != in {
			t.Errorf("lookupVNI(%d) = %v, want %v", v, ok, in)
		}
	}
}
