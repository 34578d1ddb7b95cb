package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memStore is a Store in memory.
type memStore struct {
	mu     sync.Mutex
	leases map[string]map[netip.Addr]Lease
	fail   error
}

func newMemStore() *memStore { return &memStore{leases: map[string]map[netip.Addr]Lease{}} }

func (s *memStore) PutLease(pool string, l Lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.leases[pool] == nil {
		s.leases[pool] = map[netip.Addr]Lease{}
	}
	s.leases[pool][l.Addr] = l
	return nil
}

func (s *memStore) DeleteLease(pool string, addr netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.leases[pool], addr)
	return nil
}

func (s *memStore) list(pool string) []Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ls []Lease
	for _, l := range s.leases[pool] {
		ls = append(ls, l)
	}
	return ls
}

// wire is a segment shared by the allocators of several hosts: a probe
// from one host is answered by every other host that holds the address
// (as its guard does), and by the fixed holders (hosts without the
// allocator, such as a router or a statically addressed machine).
type wire struct {
	mu      sync.Mutex
	fixed   map[netip.Addr]net.HardwareAddr
	members []*member
	probing map[netip.Addr][]*member // probes on the wire now
}

type member struct {
	w      *wire
	mac    net.HardwareAddr
	a      *Allocator
	pool   string
	mu     sync.Mutex
	probes int
	// gate, when set, holds every probe until it is closed.
	gate chan struct{}
}

func (w *wire) join(a *Allocator, pool string, mac string) *member {
	m := &member{w: w, mac: mustMAC(mac), a: a, pool: pool}
	w.mu.Lock()
	w.members = append(w.members, m)
	w.mu.Unlock()
	return m
}

func (m *member) Identity() []byte { return m.mac }

func (m *member) Probe(ctx context.Context, addr netip.Addr) (net.HardwareAddr, error) {
	m.mu.Lock()
	m.probes++
	gate := m.gate
	m.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A probe takes a while on the wire: probes of one address that
	// overlap hear each other (RFC 5227's conflict), as on a real segment.
	if mac := m.w.heard(m, addr, true); mac != nil {
		return mac, nil
	}
	time.Sleep(200 * time.Microsecond)
	return m.w.heard(m, addr, false), nil
}

// heard returns the MAC of a host that holds addr or probes for it too,
// registering m's probe (start) or ending it.
func (w *wire) heard(m *member, addr netip.Addr, start bool) net.HardwareAddr {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.probing == nil {
		w.probing = map[netip.Addr][]*member{}
	}
	if start {
		w.probing[addr] = append(w.probing[addr], m)
	} else {
		w.probing[addr] = slices.DeleteFunc(w.probing[addr], func(o *member) bool { return o == m })
	}
	if mac, ok := w.fixed[addr]; ok {
		return mac
	}
	for _, o := range w.probing[addr] {
		if o != m {
			return o.mac
		}
	}
	for _, o := range w.members {
		if o == m {
			continue
		}
		if mac, ok := o.a.Held(o.pool, addr); ok {
			if mac == nil {
				mac = o.mac
			}
			return mac
		}
	}
	return nil
}

func (m *member) probeCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.probes
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func openPool(t *testing.T, a *Allocator, id, subnet string) {
	t.Helper()
	if err := a.Open(id, Pool{Subnet: netip.MustParsePrefix(subnet)}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRequestNeverGivesNetworkBroadcastOrGateway(t *testing.T) {
	a := New(newMemStore(), WithReady(0))
	openPool(t, a, "p", "198.18.0.0/29")
	ctx := context.Background()
	gw, err := a.Request(ctx, "p", netip.Addr{}, UseGateway, nil)
	if err != nil || gw != netip.MustParseAddr("198.18.0.1") {
		t.Fatalf("gateway = %v, %v; want 198.18.0.1 (the subnet's first address)", gw, err)
	}
	got := map[netip.Addr]bool{}
	for range 5 {
		addr, err := a.Request(ctx, "p", netip.Addr{}, UseContainer, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		got[addr] = true
	}
	for _, never := range []string{"198.18.0.0", "198.18.0.1", "198.18.0.7"} {
		if got[netip.MustParseAddr(never)] {
			t.Errorf("%s handed out", never)
		}
	}
	if _, err := a.Request(ctx, "p", netip.Addr{}, UseContainer, nil); !errors.Is(err, ErrExhausted) {
		t.Fatalf("request from a full /29: %v, want ErrExhausted", err)
	}
	for _, bad := range []string{"198.18.0.0", "198.18.0.7"} {
		if _, err := a.Request(ctx, "p", netip.MustParseAddr(bad), UseContainer, nil); err == nil {
			t.Errorf("request for %s succeeded", bad)
		}
	}
	if _, err := a.Request(ctx, "p", netip.MustParseAddr("198.18.1.2"), UseContainer, nil); err == nil {
		t.Error("request outside the subnet succeeded")
	}
}

func TestRequestSkipsAddressesHeldElsewhere(t *testing.T) {
	w := &wire{fixed: map[netip.Addr]net.HardwareAddr{}}
	// Every address of the /28 but one is held by some machine.
	for i := 2; i < 15; i++ {
		if i != 9 {
			w.fixed[netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})] = mustMAC(fmt.Sprintf("02:00:00:00:00:%02x", i))
		}
	}
	a := New(newMemStore(), WithReady(0))
	openPool(t, a, "p", "198.18.0.0/28")
	if err := a.Attach("p", w.join(a, "p", "02:aa:00:00:00:01")); err != nil {
		t.Fatal(err)
	}
	addr, err := a.Request(context.Background(), "p", netip.Addr{}, UseContainer, nil)
	if err != nil || addr != netip.MustParseAddr("198.18.0.9") {
		t.Fatalf("Request = %v, %v; want the one free address 198.18.0.9", addr, err)
	}
	_, err = a.Request(context.Background(), "p", netip.MustParseAddr("198.18.0.5"), UseContainer, nil)
	var inUse *InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, ErrInUse) || inUse.MAC.String() != "02:00:00:00:00:05" {
		t.Fatalf("request for an address held elsewhere: %v; want an InUseError naming 02:00:00:00:00:05", err)
	}
	if want := "198.18.0.5"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "02:00:00:00:00:05") {
		t.Errorf("error %q names neither the address nor the MAC", err)
	}
}

// Three hosts of one segment, each with its own allocator and store,
// request addresses at the same time: none is handed out twice.
func TestHostsOfOneSegmentNeverShareAnAddress(t *testing.T) {
	for _, subnet := range []string{"198.18.4.0/24", "fd00:4::/64"} {
		t.Run(subnet, func(t *testing.T) {
			w := &wire{}
			var hosts []*Allocator
			for i := range 3 {
				a := New(newMemStore(), WithReady(2))
				openPool(t, a, "p", subnet)
				if err := a.Attach("p", w.join(a, "p", fmt.Sprintf("02:aa:00:00:00:%02x", i))); err != nil {
					t.Fatal(err)
				}
				hosts = append(hosts, a)
			}
			var mu sync.Mutex
			owner := map[netip.Addr]int{}
			var wg sync.WaitGroup
			errs := make(chan error, 3*20)
			for h, a := range hosts {
				for range 20 {
					wg.Go(func() {
						addr, err := a.Request(context.Background(), "p", netip.Addr{}, UseContainer, nil)
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						defer mu.Unlock()
						if o, dup := owner[addr]; dup {
							errs <- fmt.Errorf("%s handed out by host %d and host %d", addr, o, h)
						}
						owner[addr] = h
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			for _, a := range hosts {
				a.Detach("p")
				a.Wait()
			}
			if len(owner) != 60 {
				t.Errorf("%d addresses handed out, want 60", len(owner))
			}
		})
	}
}

func TestOrderDependsOnIdentity(t *testing.T) {
	first := func(mac string) netip.Addr {
		a := New(newMemStore(), WithReady(0))
		openPool(t, a, "p", "198.18.8.0/22")
		if err := a.Attach("p", (&wire{}).join(a, "p", mac)); err != nil {
			t.Fatal(err)
		}
		addr, err := a.Request(context.Background(), "p", netip.Addr{}, UseContainer, nil)
		if err != nil {
			t.Fatal(err)
		}
		return addr
	}
	seen := map[netip.Addr]bool{}
	for i := range 8 {
		seen[first(fmt.Sprintf("02:bb:00:00:00:%02x", i))] = true
	}
	if len(seen) < 7 {
		t.Errorf("8 hosts start at %d distinct addresses; want their orders to differ", len(seen))
	}
	if a, b := first("02:bb:00:00:00:01"), first("02:bb:00:00:00:01"); a != b {
		t.Errorf("one identity starts at %s and %s: the order must be stable", a, b)
	}
}

func TestReadyAddressesAnswerWithoutProbing(t *testing.T) {
	a := New(newMemStore(), WithReady(3))
	openPool(t, a, "p", "198.18.12.0/24")
	m := (&wire{}).join(a, "p", "02:cc:00:00:00:01")
	if err := a.Attach("p", m); err != nil {
		t.Fatal(err)
	}
	waitReady(t, a, "p", 3)
	// From now on a probe waits until the gate opens: requests answered
	// while it is shut took ready addresses.
	gate := make(chan struct{})
	m.mu.Lock()
	m.gate = gate
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var addr netip.Addr
	for range 3 {
		var err error
		if addr, err = a.Request(ctx, "p", netip.Addr{}, UseContainer, nil); err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Lock()
	m.gate = nil
	m.mu.Unlock()
	close(gate)
	if _, held := a.Held("p", addr); !held {
		t.Fatalf("%s handed out but not held", addr)
	}
	waitReady(t, a, "p", 3) // refilled in the background
	a.Detach("p")
	a.Wait()
	if st, _ := a.Status("p"); st.Ready != 0 || len(st.Leases) != 3 {
		t.Errorf("after Detach: %d ready, %d leases; want 0 and 3", st.Ready, len(st.Leases))
	}
}

func waitReady(t *testing.T, a *Allocator, id string, n int) {
	t.Helper()
	for range 500 {
		if st, _ := a.Status(id); st.Ready >= n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	st, _ := a.Status(id)
	t.Fatalf("pool holds %d addresses ready, want %d", st.Ready, n)
}

func TestLeasesSurviveARestart(t *testing.T) {
	st := newMemStore()
	a := New(st, WithReady(0))
	openPool(t, a, "p", "198.18.16.0/29")
	ctx := context.Background()
	var given []netip.Addr
	for range 3 {
		addr, err := a.Request(ctx, "p", netip.Addr{}, UseContainer, mustMAC("02:00:00:00:00:01"))
		if err != nil {
			t.Fatal(err)
		}
		given = append(given, addr)
	}
	if err := a.Release("p", given[0]); err != nil {
		t.Fatal(err)
	}
	// A new allocator opened from the store holds what the old one gave.
	b := New(st, WithReady(0))
	if err := b.Open("p", Pool{Subnet: netip.MustParsePrefix("198.18.16.0/29")}, st.list("p")); err != nil {
		t.Fatal(err)
	}
	for _, addr := range given[1:] {
		if _, held := b.Held("p", addr); !held {
			t.Errorf("%s not held after the restart", addr)
		}
		if _, err := b.Request(ctx, "p", addr, UseContainer, nil); !errors.Is(err, ErrInUse) {
			t.Errorf("request for %s after the restart: %v; want ErrInUse", addr, err)
		}
	}
	if _, held := b.Held("p", given[0]); held {
		t.Errorf("%s released but held after the restart", given[0])
	}
	if err := b.Close("p"); err != nil {
		t.Fatal(err)
	}
	if n := len(st.list("p")); n != 0 {
		t.Errorf("%d leases stored after Close", n)
	}
}

func TestStoreFailureHandsOutNothing(t *testing.T) {
	st := newMemStore()
	st.fail = errors.New("disk full")
	a := New(st, WithReady(0))
	openPool(t, a, "p", "198.18.20.0/30")
	for range 3 {
		if _, err := a.Request(context.Background(), "p", netip.Addr{}, UseContainer, nil); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Request with a failing store: %v", err)
		}
	}
	st.fail = nil
	if _, err := a.Request(context.Background(), "p", netip.Addr{}, UseContainer, nil); err != nil {
		t.Fatalf("the failed requests left the pool full: %v", err)
	}
}

func TestAnsweredRecordsConflicts(t *testing.T) {
	a := New(newMemStore(), WithReady(0))
	openPool(t, a, "p", "198.18.24.0/24")
	ours := mustMAC("02:00:00:00:00:0a")
	addr, err := a.Request(context.Background(), "p", netip.MustParseAddr("198.18.24.10"), UseContainer, ours)
	if err != nil {
		t.Fatal(err)
	}
	if a.Answered("p", addr, ours) {
		t.Error("the holder's own answer taken for a conflict")
	}
	theirs := mustMAC("02:00:00:00:00:99")
	if !a.Answered("p", addr, theirs) || !a.Answered("p", addr, theirs) {
		t.Fatal("another MAC's answer not taken for a conflict")
	}
	st, _ := a.Status("p")
	if len(st.Conflicts) != 1 || st.Conflicts[0].Addr != addr || !slices.Equal(st.Conflicts[0].Theirs, theirs) ||
		!slices.Equal(st.Conflicts[0].Ours, ours) {
		t.Fatalf("conflicts = %+v; want one for %s naming both MACs", st.Conflicts, addr)
	}
	if gw, _ := a.Request(context.Background(), "p", netip.Addr{}, UseGateway, nil); a.Answered("p", gw, theirs) {
		t.Error("an answer for the gateway (the same on every host) taken for a conflict")
	}
	if err := a.Release("p", addr); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.Status("p"); len(st.Conflicts) != 0 {
		t.Errorf("conflict kept after release: %+v", st.Conflicts)
	}
}

func TestBindSetsTheHolder(t *testing.T) {
	st := newMemStore()
	a := New(st, WithReady(0))
	openPool(t, a, "p", "198.18.28.0/24")
	addr, err := a.Request(context.Background(), "p", netip.Addr{}, UseContainer, nil)
	if err != nil {
		t.Fatal(err)
	}
	mac := mustMAC("02:00:00:00:00:0b")
	if err := a.Bind("p", addr, mac); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Held("p", addr); !slices.Equal(got, mac) {
		t.Errorf("holder = %v, want %v", got, mac)
	}
	if ls := st.list("p"); len(ls) != 1 || !slices.Equal(ls[0].MAC, mac) {
		t.Errorf("stored = %+v", ls)
	}
	if a.Answered("p", addr, mac) {
		t.Error("the bound holder's answer taken for a conflict")
	}
}

func TestUnknownPoolAndBadRange(t *testing.T) {
	a := New(newMemStore())
	if _, err := a.Request(context.Background(), "nope", netip.Addr{}, UseContainer, nil); !errors.Is(err, ErrUnknownPool) {
		t.Errorf("Request on an unknown pool: %v", err)
	}
	err := a.Open("p", Pool{Subnet: netip.MustParsePrefix("198.18.0.0/24"), Range: netip.MustParsePrefix("198.19.0.0/25")}, nil)
	if err == nil {
		t.Error("a range outside the subnet accepted")
	}
	if err := a.Open("q", Pool{Subnet: netip.MustParsePrefix("198.18.0.0/24"), Range: netip.MustParsePrefix("198.18.0.128/25")}, nil); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		addr, err := a.Request(context.Background(), "q", netip.Addr{}, UseContainer, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !netip.MustParsePrefix("198.18.0.128/25").Contains(addr) {
			t.Fatalf("%s is outside the range", addr)
		}
	}
}

func TestLeaseJSON(t *testing.T) {
	l := Lease{Addr: netip.MustParseAddr("198.18.0.5"), MAC: mustMAC("02:42:c6:12:00:05"), Use: UseContainer, Time: time.Unix(1, 0).UTC()}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"addr":"198.18.0.5","mac":"02:42:c6:12:00:05","use":"container","time":"1970-01-01T00:00:01Z"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var back Lease
	if err := json.Unmarshal(b, &back); err != nil || back.Addr != l.Addr || back.MAC.String() != l.MAC.String() || back.Use != l.Use {
		t.Errorf("read back %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"addr":"198.18.0.5","mac":"zz"}`), &back); err == nil {
		t.Error("a bad MAC read without error")
	}
}
