package ipam

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Use says what an address is held for.
type Use string

// The uses of a lease.
const (
	// UseContainer is a container's address.
	UseContainer Use = "container"
	// UseGateway is the network's gateway. It is the same on every host
	// (an anycast gateway, or a router on the fabric), so it is never
	// probed for, and never handed out to a container.
	UseGateway Use = "gateway"
	// UseAux is an auxiliary address the user reserved for the network;
	// like the gateway it is not probed for.
	UseAux Use = "aux"
	// UseHost is this host's own address on the segment.
	UseHost Use = "host"
	// UseReady is an address probed and held for the next request. It is
	// kept in memory only: a restart forgets it and probes anew.
	UseReady Use = "ready"
)

// Lease is an address a host holds in a pool. In JSON its MAC is text
// ("02:42:c6:12:00:05").
type Lease struct {
	Addr netip.Addr
	// MAC is the holder's link-layer address, when known.
	MAC  net.HardwareAddr
	Use  Use
	Time time.Time
}

// leaseJSON is a Lease's JSON form.
type leaseJSON struct {
	Addr netip.Addr `json:"addr"`
	MAC  string     `json:"mac,omitempty"`
	Use  Use        `json:"use"`
	Time time.Time  `json:"time"`
}

// MarshalJSON writes the lease with its MAC as text.
func (l Lease) MarshalJSON() ([]byte, error) {
	return json.Marshal(leaseJSON{Addr: l.Addr, MAC: l.MAC.String(), Use: l.Use, Time: l.Time})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Lease) UnmarshalJSON(b []byte) error {
	var j leaseJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	mac, err := parseMAC(j.MAC)
	if err != nil {
		return err
	}
	*l = Lease{Addr: j.Addr, MAC: mac, Use: j.Use, Time: j.Time}
	return nil
}

func parseMAC(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	m, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("lease MAC %q: %w", s, err)
	}
	return m, nil
}

// Pool is a range of addresses on one segment.
type Pool struct {
	// Subnet is the segment's subnet.
	Subnet netip.Prefix `json:"subnet"`
	// Range is where addresses are picked from: Subnet, or a part of it.
	Range netip.Prefix `json:"range"`
}

// Segment is the layer-2 segment a pool's addresses are checked on, as
// this host reaches it.
type Segment interface {
	// Probe asks the segment whether another host holds addr: it sends
	// duplicate-address probes through this host's link on the segment
	// and returns the link-layer address of the first host that answered
	// for addr (or probed for it at the same time), or nil when none did
	// within the probe's time.
	Probe(ctx context.Context, addr netip.Addr) (net.HardwareAddr, error)
	// Identity is this host's identity on the segment, such as the MAC of
	// its link: it orders the host's candidates.
	Identity() []byte
}

// Store keeps the leases of pools across restarts. Ready leases are not
// stored.
type Store interface {
	// PutLease records a lease of the pool.
	PutLease(pool string, l Lease) error
	// DeleteLease forgets a lease of the pool; one not recorded is not an
	// error.
	DeleteLease(pool string, addr netip.Addr) error
}

// Conflict is an address this host gave out that another host answers
// for on the segment.
type Conflict struct {
	Addr netip.Addr
	// Ours is the MAC of the holder here; Theirs the one that answered.
	Ours   net.HardwareAddr
	Theirs net.HardwareAddr
	Time   time.Time
}

// MarshalJSON writes the conflict with its MACs as text.
func (c Conflict) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Addr   netip.Addr `json:"addr"`
		Ours   string     `json:"ours"`
		Theirs string     `json:"theirs"`
		Time   time.Time  `json:"time"`
	}{c.Addr, c.Ours.String(), c.Theirs.String(), c.Time})
}

// Errors matched with errors.Is.
var (
	// ErrInUse reports an address held already: on this host, or by
	// another host of the segment (an *InUseError then says which MAC).
	ErrInUse = errors.New("address in use")
	// ErrExhausted reports a pool with no address left to hand out.
	ErrExhausted = errors.New("no free address in the pool")
	// ErrUnknownPool reports a pool ID the allocator does not hold.
	ErrUnknownPool = errors.New("unknown pool")
)

// InUseError reports an address another host of the segment answered for.
// It matches ErrInUse.
type InUseError struct {
	Addr netip.Addr
	MAC  net.HardwareAddr
}

// Error names the address and the MAC that answered for it.
func (e *InUseError) Error() string {
	return fmt.Sprintf("address %s is in use on the segment: %s answered for it", e.Addr, e.MAC)
}

// Is makes an InUseError match ErrInUse.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// Defaults of an Allocator.
const (
	// DefaultReady is how many probed addresses a pool holds ready.
	DefaultReady = 2
	// maxProbes bounds the candidates one request probes before it gives
	// up: every one answered means the segment is nearly full, or hostile.
	maxProbes = 32
)

// Allocator hands out the addresses of its pools. It is safe for
// concurrent use.
type Allocator struct {
	store Store
	log   *slog.Logger
	ready int
	now   func() time.Time

	mu    sync.Mutex
	pools map[string]*pool
	wg    sync.WaitGroup // background refills
}

// pool is a pool and what the allocator knows of it.
type pool struct {
	id      string
	cfg     Pool
	leases  map[netip.Addr]Lease
	probing map[netip.Addr]bool // candidates being probed now
	seg     Segment             // nil until the network's links exist
	mult    uint64              // the host's candidate order: index i is mult*i+offset
	offset  uint64
	next    uint64 // the next index of the order to try
	// refill is the context of the background refill that runs, nil when
	// none does; stop ends it.
	refill    context.Context
	stop      context.CancelFunc
	conflicts []Conflict
}

// Option configures New.
type Option func(*Allocator)

// WithLogger sets where the allocator logs (conflicts, refills that fail).
func WithLogger(l *slog.Logger) Option { return func(a *Allocator) { a.log = l } }

// WithReady sets how many probed addresses each pool holds ready (0: none,
// every request probes).
func WithReady(n int) Option { return func(a *Allocator) { a.ready = max(n, 0) } }

// New returns an allocator that records leases in store.
func New(store Store, opts ...Option) *Allocator {
	a := &Allocator{store: store, log: slog.New(slog.DiscardHandler), ready: DefaultReady, now: time.Now, pools: map[string]*pool{}}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Open makes the pool known under id with the leases it holds (read from
// the store by the caller). Opening a pool that is open already keeps it
// as it is.
func (a *Allocator) Open(id string, p Pool, leases []Lease) error {
	if !p.Subnet.IsValid() {
		return fmt.Errorf("pool %s: no subnet", id)
	}
	if !p.Range.IsValid() {
		p.Range = p.Subnet
	}
	p.Subnet, p.Range = p.Subnet.Masked(), p.Range.Masked()
	if p.Range.Addr().Is4() != p.Subnet.Addr().Is4() || p.Range.Bits() < p.Subnet.Bits() || !p.Subnet.Contains(p.Range.Addr()) {
		return fmt.Errorf("pool %s: range %s is not inside subnet %s", id, p.Range, p.Subnet)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.pools[id]; ok {
		return nil
	}
	pl := &pool{id: id, cfg: p, leases: map[netip.Addr]Lease{}, probing: map[netip.Addr]bool{}, mult: 1}
	for _, l := range leases {
		if l.Use != UseReady {
			pl.leases[l.Addr] = l
		}
	}
	a.pools[id] = pl
	return nil
}

// Close forgets the pool and its leases, in memory and in the store, and
// stops its refill.
func (a *Allocator) Close(id string) error {
	a.mu.Lock()
	pl := a.pools[id]
	delete(a.pools, id)
	a.mu.Unlock()
	if pl == nil {
		return nil
	}
	if pl.stop != nil {
		pl.stop()
	}
	var errs []error
	for addr, l := range pl.leases {
		if l.Use != UseReady {
			errs = append(errs, a.store.DeleteLease(id, addr))
		}
	}
	return errors.Join(errs...)
}

// lockPool takes a.mu and returns the pool of id; for an unknown pool it
// releases a.mu and returns an error matching ErrUnknownPool.
func (a *Allocator) lockPool(id string) (*pool, error) {
	a.mu.Lock()
	pl := a.pools[id]
	if pl == nil {
		a.mu.Unlock()
		return nil, fmt.Errorf("pool %s: %w", id, ErrUnknownPool)
	}
	return pl, nil
}

// Attach gives the pool the segment its addresses are checked on, once the
// network's links exist on this host, and starts holding addresses ready.
// The host's candidate order is derived from the segment's identity.
// Attaching again replaces the segment.
func (a *Allocator) Attach(id string, seg Segment) error {
	pl, err := a.lockPool(id)
	if err != nil {
		return err
	}
	defer a.mu.Unlock()
	pl.seg = seg
	sum := sha256.Sum256(append([]byte(pl.cfg.Range.String()+"|"), seg.Identity()...))
	pl.mult = binary.BigEndian.Uint64(sum[0:8]) | 1 // odd: a permutation of every power of two
	pl.offset = binary.BigEndian.Uint64(sum[8:16])
	pl.next = 0
	a.startRefill(pl)
	return nil
}

// Detach stops checking the pool's addresses on its segment and drops the
// addresses held ready: the network's links are going.
func (a *Allocator) Detach(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	pl := a.pools[id]
	if pl == nil {
		return
	}
	if pl.stop != nil {
		pl.stop()
		pl.stop, pl.refill = nil, nil
	}
	pl.seg = nil
	for addr, l := range pl.leases {
		if l.Use == UseReady {
			delete(pl.leases, addr)
		}
	}
}

// Wait returns once no background refill runs: for tests and shut-down,
// after the pools are detached or closed.
func (a *Allocator) Wait() { a.wg.Wait() }

// Request hands out an address of the pool for use: want, if it is valid
// (an error if it is held here or answered for on the segment), else the
// next free one. mac is the holder's link-layer address, if known. The
// lease is recorded before it is returned.
func (a *Allocator) Request(ctx context.Context, id string, want netip.Addr, use Use, mac net.HardwareAddr) (netip.Addr, error) {
	if use == UseReady {
		return netip.Addr{}, fmt.Errorf("pool %s: ready addresses are the allocator's own", id)
	}
	if !want.IsValid() && use == UseGateway {
		// The gateway must be the same on every host: the subnet's first
		// address, as Docker's own IPAM gives it.
		a.mu.Lock()
		if pl := a.pools[id]; pl != nil {
			want = pl.cfg.Subnet.Addr().Next()
		}
		a.mu.Unlock()
	}
	if want.IsValid() {
		return a.requestAddr(ctx, id, want.Unmap(), use, mac)
	}
	if use != UseContainer && use != UseHost {
		return netip.Addr{}, fmt.Errorf("pool %s: a %s address must be named", id, use)
	}
	for tries := 0; ; tries++ {
		pl, err := a.lockPool(id)
		if err != nil {
			return netip.Addr{}, err
		}
		if addr, ok := pl.takeReady(); ok {
			l := Lease{Addr: addr, MAC: mac, Use: use, Time: a.now()}
			if err := a.store.PutLease(id, l); err != nil {
				a.mu.Unlock()
				return netip.Addr{}, err
			}
			pl.leases[addr] = l
			a.startRefill(pl)
			a.mu.Unlock()
			return addr, nil
		}
		cand, err := pl.candidate()
		seg := pl.seg
		a.mu.Unlock()
		if err != nil {
			return netip.Addr{}, err
		}
		if tries >= maxProbes {
			a.release(id, cand)
			return netip.Addr{}, fmt.Errorf("pool %s: %d addresses in a row are answered for on the segment: %w", id, maxProbes, ErrExhausted)
		}
		holder, err := probe(ctx, seg, cand)
		if err != nil {
			a.release(id, cand)
			return netip.Addr{}, err
		}
		if holder != nil {
			a.release(id, cand)
			a.log.Debug("address answered for on the segment; trying the next", "pool", id, "address", cand, "mac", holder)
			continue
		}
		if err := a.commit(id, cand, use, mac); err != nil {
			return netip.Addr{}, err
		}
		return cand, nil
	}
}

// requestAddr leases a named address.
func (a *Allocator) requestAddr(ctx context.Context, id string, want netip.Addr, use Use, mac net.HardwareAddr) (netip.Addr, error) {
	pl, err := a.lockPool(id)
	if err != nil {
		return netip.Addr{}, err
	}
	if !pl.cfg.Subnet.Contains(want) {
		a.mu.Unlock()
		return netip.Addr{}, fmt.Errorf("address %s is not in the pool's subnet %s", want, pl.cfg.Subnet)
	}
	if (use == UseContainer || use == UseHost) && !pl.handsOut(want) {
		a.mu.Unlock()
		return netip.Addr{}, fmt.Errorf("address %s is the subnet's network or broadcast address, which is never handed out", want)
	}
	if l, ok := pl.leases[want]; ok {
		switch {
		case l.Use == UseReady:
			delete(pl.leases, want) // ours to give: no probe needed
			pl.probing[want] = true
			a.startRefill(pl)
			a.mu.Unlock()
			if err := a.commit(id, want, use, mac); err != nil {
				return netip.Addr{}, err
			}
			return want, nil
		case l.Use == use && (use == UseGateway || use == UseAux || len(mac) > 0 && slices.Equal(l.MAC, mac)):
			// The same request again: a replay, or dockerd reserving at its
			// start the addresses its networks hold.
			a.mu.Unlock()
			return want, nil
		}
		a.mu.Unlock()
		return netip.Addr{}, fmt.Errorf("address %s is held on this host (%s): %w", want, l.Use, ErrInUse)
	}
	if pl.probing[want] {
		a.mu.Unlock()
		return netip.Addr{}, fmt.Errorf("address %s is being checked for another request: %w", want, ErrInUse)
	}
	seg := pl.seg
	pl.probing[want] = true
	a.mu.Unlock()
	if use == UseContainer || use == UseHost {
		holder, err := probe(ctx, seg, want)
		if err != nil {
			a.release(id, want)
			return netip.Addr{}, err
		}
		if holder != nil {
			a.release(id, want)
			return netip.Addr{}, &InUseError{Addr: want, MAC: holder}
		}
	}
	if err := a.commit(id, want, use, mac); err != nil {
		return netip.Addr{}, err
	}
	return want, nil
}

// probe asks seg about addr; without a segment nothing is asked.
func probe(ctx context.Context, seg Segment, addr netip.Addr) (net.HardwareAddr, error) {
	if seg == nil {
		return nil, nil
	}
	holder, err := seg.Probe(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("probing for %s on the segment: %w", addr, err)
	}
	return holder, nil
}

// commit records the lease of a candidate that was being probed.
func (a *Allocator) commit(id string, addr netip.Addr, use Use, mac net.HardwareAddr) error {
	l := Lease{Addr: addr, MAC: mac, Use: use, Time: a.now()}
	if use != UseReady {
		if err := a.store.PutLease(id, l); err != nil {
			a.release(id, addr)
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	pl := a.pools[id]
	if pl == nil {
		return fmt.Errorf("pool %s: %w (closed meanwhile)", id, ErrUnknownPool)
	}
	delete(pl.probing, addr)
	pl.leases[addr] = l
	return nil
}

// release drops a candidate that was being probed.
func (a *Allocator) release(id string, addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if pl := a.pools[id]; pl != nil {
		delete(pl.probing, addr)
	}
}

// Release gives an address back. One not held is not an error.
func (a *Allocator) Release(id string, addr netip.Addr) error {
	addr = addr.Unmap()
	pl, err := a.lockPool(id)
	if err != nil {
		return err
	}
	_, held := pl.leases[addr]
	delete(pl.leases, addr)
	pl.conflicts = slices.DeleteFunc(pl.conflicts, func(c Conflict) bool { return c.Addr == addr })
	a.mu.Unlock()
	if !held {
		return nil
	}
	return a.store.DeleteLease(id, addr)
}

// Bind records mac as the holder of an address handed out here, once the
// front end knows the interface that carries it: answers from that MAC are
// the holder's own, not a conflict.
func (a *Allocator) Bind(id string, addr netip.Addr, mac net.HardwareAddr) error {
	addr = addr.Unmap()
	pl, err := a.lockPool(id)
	if err != nil {
		return err
	}
	l, ok := pl.leases[addr]
	if !ok || l.Use == UseReady || slices.Equal(l.MAC, mac) {
		a.mu.Unlock()
		return nil
	}
	l.MAC = slices.Clone(mac)
	pl.leases[addr] = l
	a.mu.Unlock()
	return a.store.PutLease(id, l)
}

// Held returns the holder's MAC of an address the pool holds here (ready
// addresses included, their MAC nil), and whether it holds it: what a
// guard answers other hosts' probes for.
func (a *Allocator) Held(id string, addr netip.Addr) (net.HardwareAddr, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	pl := a.pools[id]
	if pl == nil {
		return nil, false
	}
	l, ok := pl.leases[addr.Unmap()]
	if !ok || l.Use == UseGateway || l.Use == UseAux {
		return nil, false // the same on every host, or not a host's alone
	}
	return l.MAC, true
}

// Answered tells the allocator that mac answered on the segment for addr.
// For an address held ready, the allocator drops it (another host got it
// first); for one handed out here to another MAC, it records a Conflict
// and logs both MACs. It reports whether it was a conflict.
func (a *Allocator) Answered(id string, addr netip.Addr, mac net.HardwareAddr) bool {
	addr = addr.Unmap()
	a.mu.Lock()
	defer a.mu.Unlock()
	pl := a.pools[id]
	if pl == nil {
		return false
	}
	l, ok := pl.leases[addr]
	switch {
	case !ok || l.Use == UseGateway || l.Use == UseAux || slices.Equal(l.MAC, mac):
		return false
	case l.Use == UseReady:
		delete(pl.leases, addr)
		a.startRefill(pl)
		return false
	}
	for _, c := range pl.conflicts {
		if c.Addr == addr && slices.Equal(c.Theirs, mac) {
			return true // known already
		}
	}
	c := Conflict{Addr: addr, Ours: l.MAC, Theirs: mac, Time: a.now()}
	pl.conflicts = append(pl.conflicts, c)
	a.log.Error("address given out here is answered for by another host of the segment",
		"pool", id, "address", addr, "ours", macText(l.MAC), "theirs", macText(mac))
	return true
}

func macText(m net.HardwareAddr) string {
	if len(m) == 0 {
		return "(none)"
	}
	return m.String()
}

// PoolStatus is what a pool holds on this host.
type PoolStatus struct {
	ID     string `json:"id"`
	Subnet string `json:"subnet"`
	// Leases are the addresses handed out here (not those held ready),
	// sorted by address.
	Leases []Lease `json:"leases"`
	// Ready counts the addresses probed and held for the next requests.
	Ready int `json:"ready"`
	// Conflicts are addresses handed out here that another host answers for.
	Conflicts []Conflict `json:"conflicts,omitempty"`
}

// Status returns what the pool holds, or false for an unknown pool.
func (a *Allocator) Status(id string) (PoolStatus, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	pl := a.pools[id]
	if pl == nil {
		return PoolStatus{}, false
	}
	st := PoolStatus{ID: id, Subnet: pl.cfg.Subnet.String(), Leases: []Lease{}, Conflicts: slices.Clone(pl.conflicts)}
	for _, l := range pl.leases {
		if l.Use == UseReady {
			st.Ready++
			continue
		}
		st.Leases = append(st.Leases, l)
	}
	slices.SortFunc(st.Leases, func(x, y Lease) int { return x.Addr.Compare(y.Addr) })
	return st, true
}

// takeReady returns an address held ready, forgetting it as such. a.mu is
// held.
func (pl *pool) takeReady() (netip.Addr, bool) {
	var best netip.Addr
	for addr, l := range pl.leases {
		if l.Use == UseReady && (!best.IsValid() || addr.Less(best)) {
			best = addr
		}
	}
	if best.IsValid() {
		delete(pl.leases, best)
	}
	return best, best.IsValid()
}

// readyCount counts the addresses held ready and being probed. a.mu is
// held.
func (pl *pool) readyCount() int {
	n := len(pl.probing)
	for _, l := range pl.leases {
		if l.Use == UseReady {
			n++
		}
	}
	return n
}

// candidate returns the next address of the host's order that is free
// here and not being probed, and marks it as being probed. a.mu is held.
func (pl *pool) candidate() (netip.Addr, error) {
	hostBits := pl.cfg.Range.Addr().BitLen() - pl.cfg.Range.Bits()
	size := uint64(0) // 0 stands for 2^64
	if hostBits < 64 {
		size = 1 << hostBits
	}
	for tried := uint64(0); size == 0 || tried < size; tried++ {
		i := pl.mult*pl.next + pl.offset
		pl.next++
		if size != 0 {
			i &= size - 1
		}
		addr := addOffset(pl.cfg.Range.Addr(), i)
		if _, held := pl.leases[addr]; held || pl.probing[addr] || !pl.handsOut(addr) {
			continue
		}
		pl.probing[addr] = true
		return addr, nil
	}
	return netip.Addr{}, fmt.Errorf("pool %s (%s): %w", pl.id, pl.cfg.Range, ErrExhausted)
}

// handsOut reports whether addr may be given to a container or a host: not
// the subnet's network address (for IPv6, its subnet-router anycast
// address) nor, in IPv4, its broadcast address.
func (pl *pool) handsOut(addr netip.Addr) bool {
	s := pl.cfg.Subnet
	if addr == s.Addr() {
		return false
	}
	if addr.Is4() && s.Bits() < 31 && addr == lastAddr(s) {
		return false
	}
	return true
}

// addOffset returns base plus n (n fits the host part of the range).
func addOffset(base netip.Addr, n uint64) netip.Addr {
	b := base.As16()
	lo := binary.BigEndian.Uint64(b[8:])
	sum := lo + n
	binary.BigEndian.PutUint64(b[8:], sum)
	if sum < lo { // carry into the upper half
		hi := binary.BigEndian.Uint64(b[:8]) + 1
		binary.BigEndian.PutUint64(b[:8], hi)
	}
	a := netip.AddrFrom16(b)
	if base.Is4() {
		return a.Unmap()
	}
	return a
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 7; j >= 0; j-- {
			if i*8+(7-j) >= bits {
				b[i] |= 1 << j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// startRefill has addresses probed and held ready in the background until
// the pool holds its share, unless that runs already. a.mu is held.
func (a *Allocator) startRefill(pl *pool) {
	if pl.refill != nil || pl.seg == nil || a.ready == 0 || pl.readyCount() >= a.ready {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	pl.refill, pl.stop = ctx, cancel
	a.wg.Add(1)
	go a.runRefill(ctx, pl)
}

// runRefill probes candidates until the pool holds its share ready.
func (a *Allocator) runRefill(ctx context.Context, pl *pool) {
	defer a.wg.Done()
	defer func() {
		a.mu.Lock()
		if pl.refill == ctx {
			pl.stop()
			pl.refill, pl.stop = nil, nil
		}
		a.mu.Unlock()
	}()
	for answered := 0; answered < maxProbes; {
		a.mu.Lock()
		if a.pools[pl.id] != pl || pl.seg == nil || pl.readyCount() >= a.ready || ctx.Err() != nil {
			a.mu.Unlock()
			return
		}
		cand, err := pl.candidate()
		seg := pl.seg
		a.mu.Unlock()
		if err != nil {
			return // full: requests say so
		}
		holder, err := probe(ctx, seg, cand)
		if err != nil || holder != nil {
			a.release(pl.id, cand)
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("holding an address ready", "pool", pl.id, "error", err)
				}
				return
			}
			answered++
			continue
		}
		if ctx.Err() != nil {
			a.release(pl.id, cand) // detached meanwhile: nothing to hold ready
			return
		}
		if err := a.commit(pl.id, cand, UseReady, nil); err != nil {
			return
		}
	}
}
