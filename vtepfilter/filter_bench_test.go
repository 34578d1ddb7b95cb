package vtepfilter

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchNetwork is the i-th network of the benchmarks: VNI 1000+i, one
// IPv4 source admitted.
func benchNetwork(i int) Network {
	return Network{Name: fmt.Sprintf("n%d", i), Port: 4789, VNI: uint32(1000 + i),
		Allowed: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(i%250 + 1)}), 32)}}
}

// BenchmarkIntegrationOneNetwork measures a change to one network's filter
// beside 1 and beside 1000 other networks in the table (in a namespace of
// its own): Install makes a new network's sets and rules, SetAllowed
// replaces its allow-list, Remove deletes its rules and sets (the table
// stays, holding the others). Each is timed alone: the steps that bring
// the network back for the next iteration are not. Needs root.
//
//	go test -run X -bench IntegrationOneNetwork -benchtime 100x ./vtepfilter
func BenchmarkIntegrationOneNetwork(b *testing.B) {
	for _, others := range []int{1, 1000} {
		b.Run(fmt.Sprintf("others=%d", others), func(b *testing.B) {
			_, f, _ := newFilter(b)
			ctx := b.Context()
			nets := make([]Network, others)
			for i := range nets {
				nets[i] = benchNetwork(i)
			}
			if err := f.Sync(ctx, nets, nil); err != nil {
				b.Fatal(err)
			}
			n := benchNetwork(others)
			install := func() {
				if err := f.Install(ctx, n); err != nil {
					b.Fatal(err)
				}
			}
			remove := func() {
				if err := f.Remove(ctx, n.Name); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("Install", func(b *testing.B) {
				for b.Loop() {
					install()
					b.StopTimer()
					remove()
					b.StartTimer()
				}
			})
			b.Run("SetAllowed", func(b *testing.B) {
				install()
				allowed := [][]netip.Prefix{pfx("198.19.0.1/32", "fd00::1/128"), pfx("198.19.0.2/32")}
				for i := 0; b.Loop(); i++ {
					if err := f.SetAllowed(ctx, n.Name, allowed[i%2]); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				remove()
			})
			b.Run("Remove", func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					install()
					b.StartTimer()
					remove()
				}
			})
			if st, err := f.Read(ctx); err != nil || len(st) != others {
				b.Fatalf("after the benchmark: %d networks, %v; want %d", len(st), err, others)
			}
		})
	}
}

// BenchmarkIntegrationSync measures the start's rebuild of the table:
// Sync of 200 and of 4096 networks (a host's most) into an empty table
// ("fresh"), and over the table it made, each network unchanged
// ("again": its rules kept, its sets filled anew). Each in a namespace of
// its own; the steps that empty the table for the next iteration are not
// timed. Needs root.
//
//	go test -run X -bench IntegrationSync -benchtime 3x ./vtepfilter
func BenchmarkIntegrationSync(b *testing.B) {
	for _, n := range []int{200, 4096} {
		nets := make([]Network, n)
		for i := range nets {
			nets[i] = benchNetwork(i)
		}
		b.Run(fmt.Sprintf("networks=%d/fresh", n), func(b *testing.B) {
			_, f, _ := newFilter(b)
			for b.Loop() {
				if err := f.Sync(b.Context(), nets, nil); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := f.Sync(b.Context(), nil, nil); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
		b.Run(fmt.Sprintf("networks=%d/again", n), func(b *testing.B) {
			_, f, _ := newFilter(b)
			if err := f.Sync(b.Context(), nets, nil); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := f.Sync(b.Context(), nets, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
