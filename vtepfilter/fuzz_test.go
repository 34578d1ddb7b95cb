package vtepfilter

import (
	"net/netip"
	"slices"
	"testing"
)

// FuzzElementsRoundTrip: any prefixes of one family become interval
// elements whose keys strictly increase, with starts and ends alternating
// (what the kernel's interval set takes), and read back as prefixes that
// cover exactly the same addresses.
func FuzzElementsRoundTrip(f *testing.F) {
	f.Add([]byte{198, 18, 0, 1, 32, 198, 18, 0, 2, 32}, false)
	f.Add([]byte{0, 0, 0, 0, 0}, false)
	f.Add([]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 128}, true)
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		size := 4
		if v6 {
			size = 16
		}
		var ps []netip.Prefix
		for len(data) >= size+1 {
			a, _ := netip.AddrFromSlice(data[:size])
			ps = append(ps, netip.PrefixFrom(a, int(data[size])%(size*8+1)))
			data = data[size+1:]
		}
		els := elements(ps)
		for i := 1; i < len(els); i++ {
			a, _ := netip.AddrFromSlice(els[i-1].Key)
			b, _ := netip.AddrFromSlice(els[i].Key)
			if a.Compare(b) >= 0 || els[i-1].IntervalEnd == els[i].IntervalEnd {
				t.Fatalf("%v: elements %d and %d out of order or not alternating: %v", ps, i-1, i, els)
			}
		}
		back := prefixesOf(els)
		if got, want := mergeRanges(back), mergeRanges(ps); !slices.Equal(got, want) {
			t.Fatalf("%v read back as %v: ranges %v, want %v", ps, back, got, want)
		}
	})
}
