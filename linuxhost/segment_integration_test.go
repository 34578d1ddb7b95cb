package linuxhost

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// openSegmentIn opens a segment on link in ns, closed at the test's end.
func openSegmentIn(t *testing.T, ns *testns.NS, link string, g Guard) *Segment {
	t.Helper()
	var s *Segment
	if err := ns.Do(func() (err error) { s, err = OpenSegment(link, g, nil); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// heldSet is a guard's view of the addresses a host holds.
type heldSet struct {
	mu       sync.Mutex
	held     map[netip.Addr]net.HardwareAddr
	answered []string
}

func (h *heldSet) guard() Guard {
	return Guard{
		Held: func(a netip.Addr) (net.HardwareAddr, bool) {
			h.mu.Lock()
			defer h.mu.Unlock()
			mac, ok := h.held[a]
			return mac, ok
		},
		Answered: func(a netip.Addr, mac net.HardwareAddr) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.answered = append(h.answered, a.String()+" "+mac.String())
		},
	}
}

// Two hosts on one segment (a veth pair): probes find the addresses the
// other host's kernel carries and those its guard holds, and find nothing
// for a free address; the guard's answer to the kernel's own IPv6
// duplicate-address detection makes the kernel refuse the address.
func TestIntegrationSegmentProbesAndGuards(t *testing.T) {
	testns.RequireRoot(t)
	a, b := testns.New(t), testns.New(t)
	la, lb := testns.Underlay(t, a, b)
	b.IP("addr", "add", "198.18.40.5/24", "dev", lb)
	b.IP("addr", "add", "fd00:40::5/64", "dev", lb, "nodad")
	macB := b.LinkJSON(lb).Address

	guardHeld := &heldSet{held: map[netip.Addr]net.HardwareAddr{
		netip.MustParseAddr("198.18.40.6"): mustParseMAC(t, "02:00:00:00:40:06"),
		netip.MustParseAddr("fd00:40::6"):  nil, // held, on no interface yet: the link's MAC answers
	}}
	sa := openSegmentIn(t, a, la, Guard{})
	openSegmentIn(t, b, lb, guardHeld.guard())
	if got := net.HardwareAddr(sa.Identity()).String(); got != a.LinkJSON(la).Address {
		t.Errorf("Identity = %s, want the link's MAC %s", got, a.LinkJSON(la).Address)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct{ addr, want string }{
		{"198.18.40.5", macB},                // the kernel answers for its address
		{"fd00:40::5", macB},                 // the kernel's neighbour advertisement
		{"198.18.40.6", "02:00:00:00:40:06"}, // the guard, with the holder's MAC
		{"fd00:40::6", macB},                 // the guard, with the link's MAC
		{"198.18.40.7", ""},                  // free
		{"fd00:40::7", ""},
	} {
		mac, err := sa.Probe(ctx, netip.MustParseAddr(c.addr))
		if err != nil {
			t.Fatal(err)
		}
		if got := macString(mac); got != c.want {
			t.Errorf("probe for %s answered by %q, want %q", c.addr, got, c.want)
		}
	}

	// The kernel of host a runs duplicate-address detection for an
	// address host b's guard holds: b defends it and a's kernel marks it
	// failed.
	a.IP("addr", "add", "fd00:40::6/64", "dev", la)
	testns.Eventually(t, 10*time.Second, 50*time.Millisecond, "a's kernel to fail DAD for fd00:40::6", func() error {
		out := a.IP("-6", "addr", "show", "dev", la)
		if !strings.Contains(out, "dadfailed") {
			return &probeErr{out}
		}
		return nil
	})

	// An ARP announcement from a for an address b holds for another MAC is
	// reported to b's guard.
	guardHeld.mu.Lock()
	guardHeld.held[netip.MustParseAddr("198.18.40.9")] = mustParseMAC(t, "02:00:00:00:40:09")
	guardHeld.mu.Unlock()
	a.IP("addr", "add", "198.18.40.9/24", "dev", la)
	if _, err := a.Exec("ping", "-c1", "-W1", "198.18.40.5"); err != nil {
		t.Fatal(err) // a's ARP request for .5 names .9 as its sender
	}
	testns.Eventually(t, 10*time.Second, 50*time.Millisecond, "b's guard to hear a claim .9", func() error {
		guardHeld.mu.Lock()
		defer guardHeld.mu.Unlock()
		for _, s := range guardHeld.answered {
			if s == "198.18.40.9 "+a.LinkJSON(la).Address {
				return nil
			}
		}
		return &probeErr{strings.Join(guardHeld.answered, "; ")}
	})
}

// Two hosts probing one address at the same moment never both take it:
// at least one hears the other's probe and backs off. (Both hear each
// other when both listen before either sends; when one's first probe went
// out before the other listened, the later one is heard, the earlier
// backs off and the later one takes the address, alone.)
func TestIntegrationSegmentConcurrentProbes(t *testing.T) {
	testns.RequireRoot(t)
	a, b := testns.New(t), testns.New(t)
	la, lb := testns.Underlay(t, a, b)
	sa := openSegmentIn(t, a, la, Guard{})
	sb := openSegmentIn(t, b, lb, Guard{})
	for _, addr := range []string{"198.18.41.8", "fd00:41::8"} {
		var wg sync.WaitGroup
		var ma, mb net.HardwareAddr
		wg.Go(func() { ma, _ = sa.Probe(context.Background(), netip.MustParseAddr(addr)) })
		wg.Go(func() { mb, _ = sb.Probe(context.Background(), netip.MustParseAddr(addr)) })
		wg.Wait()
		aHeard, bHeard := macString(ma) == b.LinkJSON(lb).Address, macString(mb) == a.LinkJSON(la).Address
		if !aHeard && !bHeard || ma != nil && !aHeard || mb != nil && !bHeard {
			t.Errorf("concurrent probes for %s: a heard %q, b heard %q; want at least one to hear the other's MAC, and no other", addr, macString(ma), macString(mb))
		}
	}
}

type probeErr struct{ s string }

func (e *probeErr) Error() string { return e.s }

func macString(m net.HardwareAddr) string {
	if m == nil {
		return ""
	}
	return m.String()
}

func mustParseMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
