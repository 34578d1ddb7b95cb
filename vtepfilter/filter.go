package vtepfilter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ErrUnsupported is matched by the errors of a kernel without nf_tables,
// or without its inet family or base chains: the filter cannot be made.
var ErrUnsupported = errors.New("the kernel has no nf_tables (inet family, filter base chains)")

// ErrNotFound is matched by the error of reading a network the table does
// not hold.
var ErrNotFound = errors.New("no such network in the filter table")

// Filter makes and reads the plugin's table in one network namespace. It
// is safe for concurrent use: its changes are serialised, each one kernel
// transaction (all of it or nothing is applied), except Sync, which is one
// per few networks.
type Filter struct {
	mu    sync.Mutex
	netns int
	// conn is lasting: the transactions. It is replaced after any error
	// (see renew), so that no answer of a failed transaction is taken
	// for a later one's. sock is its socket, nil when it opens one per
	// transaction.
	conn *nftables.Conn
	sock *netlink.Conn
	read *nftables.Conn // a socket per call: the listings
	// single is lasting: the reads of one object (lookup.go); replaced
	// after any error but a missing object's.
	single *netlink.Conn
	table  *nftables.Table
	chain  *nftables.Chain
	// listings counts the listings of the chain's rules, renewals the
	// connections replaced after an error, for the tests.
	listings, renewals int
}

// Option configures New.
type Option func(*config)

type config struct {
	netns int
}

// WithNetNSFd makes the filter in the network namespace fd refers to,
// which the caller keeps open while the Filter is used. Without it, the
// filter is made in the namespace of the calling process.
func WithNetNSFd(fd int) Option {
	return func(c *config) { c.netns = fd }
}

// New opens a netlink connection of the nftables family. It makes nothing;
// [Filter.Probe] tells whether the kernel can hold the table.
func New(opts ...Option) (*Filter, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	var nopts []nftables.ConnOption
	if cfg.netns != 0 {
		nopts = append(nopts, nftables.WithNetNSFd(cfg.netns))
	}
	conn, sock, err := dialChanges(cfg.netns, true)
	if err != nil {
		return nil, classify(fmt.Errorf("vtepfilter: open nftables netlink connection: %w", err))
	}
	// Listings get a socket of their own each. With listings on the
	// lasting socket, the scale benchmark (200 networks made and deleted
	// through the Docker driver) failed a deletion's listing with
	// "unexpected header type: got error": a message of an earlier call
	// left on that socket (the short tests did not reproduce it).
	read, err := nftables.New(nopts...)
	if err != nil {
		conn.CloseLasting()
		return nil, classify(fmt.Errorf("vtepfilter: open nftables netlink connection: %w", err))
	}
	// The reads of one object ask without an acknowledgement: the kernel
	// answers each with exactly one message, and nothing is left on the
	// socket for the next.
	single, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: cfg.netns})
	if err != nil {
		conn.CloseLasting()
		return nil, classify(fmt.Errorf("vtepfilter: open nftables netlink connection: %w", err))
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	return &Filter{netns: cfg.netns, conn: conn, sock: sock, read: read, single: single, table: t, chain: baseChain(t, ChainName)}, nil
}

// flushTimeout bounds a transaction's wait for the kernel's answers, which
// are all on the socket by the time the batch's send returns: a kernel
// that answered fewer messages than the batch has (one error for the whole
// batch, as it does when out of memory) would otherwise have Flush wait
// for ever, f.mu held.
const flushTimeout = 30 * time.Second

// dialChanges opens the connection of the transactions: lasting, with its
// socket, or one that opens a socket per transaction (and sock nil). Its
// socket (each) asks the kernel for errors without the request they answer
// (NETLINK_CAP_ACK): each answer to a batch is then as small as an
// acknowledgement, whatever fails, and the answers to a batch of at most
// maxBatchMessages fit in the socket's receive buffer. A kernel without
// the option (before Linux 4.3) sends the requests back, and is left to.
func dialChanges(netns int, lasting bool) (conn *nftables.Conn, sock *netlink.Conn, err error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(c *netlink.Conn) error {
		_ = c.SetOption(netlink.CapAcknowledge, true)
		if lasting {
			sock = c // its deadline set by flush
		} else {
			_ = c.SetReadDeadline(time.Now().Add(flushTimeout)) // opened by Flush
		}
		return nil
	})}
	if netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(netns))
	}
	if lasting {
		opts = append(opts, nftables.AsLasting())
	}
	conn, err = nftables.New(opts...)
	return conn, sock, err
}

// flush sends the batch queued on f.conn, as one transaction. After an
// error it replaces the connection (see renew). f.mu is held.
func (f *Filter) flush() error {
	if f.sock != nil {
		_ = f.sock.SetReadDeadline(time.Now().Add(flushTimeout))
	}
	err := f.conn.Flush()
	if err != nil {
		f.renew()
	}
	return err
}

// renew replaces the connection of the transactions, after an error or to
// drop a batch queued but not to be sent. The library's Conn cannot be
// trusted after an error: Flush gives up at the first ENOBUFS (the
// kernel's answers overflowed the socket's buffer: the transaction may
// well have been applied) or EPERM and leaves the kernel's other answers
// on the lasting socket, where the next Flush takes them for its own (a
// transaction that failed was reported done); and it keeps a batch's
// encoding error, and a batch queued but not flushed, for the next Flush;
// after a timeout (see flushTimeout), the answers may yet come. A fresh
// Conn and socket have none of it. Should the socket not open, the new
// Conn opens one per transaction until the next renewal. f.mu is held.
func (f *Filter) renew() {
	_ = f.conn.CloseLasting()
	c, sock, err := dialChanges(f.netns, true)
	if err != nil {
		c, sock, _ = dialChanges(f.netns, false) // opens no socket: no error
	}
	f.conn, f.sock = c, sock
	f.renewals++
}

// baseChain is the table's base chain called name.
func baseChain(t *nftables.Table, name string) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name:     name,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookInput,
		Priority: nftables.ChainPriorityRef(ChainPriority),
		Policy:   &accept,
	}
}

// Close closes the connections; the table stays as it is.
func (f *Filter) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.conn.CloseLasting(), f.single.Close())
}

// classify marks an error of a kernel without nf_tables with
// ErrUnsupported.
func classify(err error) error {
	for _, e := range []error{unix.EPROTONOSUPPORT, unix.EOPNOTSUPP, unix.EAFNOSUPPORT} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
	}
	return err
}

// Probe asks the kernel whether it can hold the table: in one
// transaction, it makes a probe table (TableName_probe) with a base chain
// like the table's, and deletes it. Nothing is left, and the plugin's own
// table is not touched. An error matching ErrUnsupported means the kernel
// lacks nf_tables; another error is a failure to ask.
func (f *Filter) Probe(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName + "_probe"}
	f.conn.AddTable(t)
	f.conn.AddChain(baseChain(t, ChainName))
	f.conn.DelTable(t)
	if err := f.flush(); err != nil {
		err = classify(err)
		if errors.Is(err, unix.ENOENT) {
			// No filter chain type for the family: nft_chain_filter missing.
			err = fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		return fmt.Errorf("vtepfilter: probe with table inet %s: %w", t.Name, err)
	}
	return nil
}

// begin checks ctx, takes f.mu and lists the table's rules of this
// package (see ours). On success the caller holds f.mu and unlocks it.
func (f *Filter) begin(ctx context.Context) (map[string][]*nftables.Rule, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	have, err := f.ours()
	if err != nil {
		f.mu.Unlock()
		return nil, err
	}
	return have, nil
}

// ours lists the rules of the table's base chain that carry this package's
// comment, by network name. A table that does not exist has none.
func (f *Filter) ours() (map[string][]*nftables.Rule, error) {
	f.listings++
	// A dump of the rules of a table that does not exist is empty.
	rules, err := f.read.GetRules(f.table, f.chain)
	if err != nil {
		return nil, classify(fmt.Errorf("vtepfilter: list the rules of inet %s %s: %w", TableName, ChainName, err))
	}
	out := map[string][]*nftables.Rule{}
	for _, r := range rules {
		if n, ok := parseComment(ruleComment(r)); ok {
			out[n.Name] = append(out[n.Name], r)
		}
	}
	return out, nil
}

// sets lists the table's sets by name; a table that does not exist has
// none.
func (f *Filter) sets() (map[string]*nftables.Set, error) {
	// The library loses the errno of a listing (ENOENT for a missing
	// table): ask for the family's tables first, a dump that cannot fail so.
	tables, err := f.read.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, classify(fmt.Errorf("vtepfilter: list the inet tables: %w", err))
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == TableName }) {
		return map[string]*nftables.Set{}, nil
	}
	sets, err := f.read.GetSets(f.table)
	if err != nil {
		return nil, classify(fmt.Errorf("vtepfilter: list the sets of inet %s: %w", TableName, err))
	}
	out := make(map[string]*nftables.Set, len(sets))
	for _, s := range sets {
		out[s.Name] = s
	}
	return out, nil
}

// Install makes the network's sets and rules, or brings them in line:
// its sets get exactly n.Allowed, and its rules are kept when they match
// n's port and VNI (so their drop counters go on counting) and made anew
// otherwise. The table and its base chain are made when missing. One
// transaction, after reading the network's sets and rules (not the
// others': see find).
func (f *Filter) Install(ctx context.Context, n Network) error {
	if err := n.Validate(); err != nil {
		return fmt.Errorf("vtepfilter: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.install(&n)
}

// install makes one network as Install does. f.mu is held.
func (f *Filter) install(n *Network) error {
	have, err := f.find(n.Name, false)
	if err != nil {
		return err
	}
	c := planNetwork(n, have.rules, have.sets)
	if err := f.transact([]change{c}); err != nil {
		return classify(fmt.Errorf("vtepfilter: install %s in inet %s: %w", n.Name, TableName, err))
	}
	return nil
}

// Budgets of one of Sync's transactions, which the kernel's defaults
// (212992 bytes for a socket's buffers, net.core.rmem_default and
// wmem_default) hold with room to spare.
const (
	// maxBatchMessages bounds the messages of a transaction, and so the
	// kernel's answers: one per message (see dialChanges), all queued on
	// the socket before the first is read. Each takes about 900 bytes
	// of the receive buffer, as the kernel counts: those of 234 messages
	// (29 networks with both sets filled) overflowed it.
	maxBatchMessages = 96
	// maxBatchBytes bounds a transaction's batch, as estimated (see
	// planNetwork): the kernel takes it in one message, which fails
	// with EMSGSIZE when longer than the socket's send buffer.
	maxBatchBytes = 64 << 10
)

// Estimates of the messages' sizes (their header included), upper bounds
// checked by TestBatchSizeEstimate.
const (
	sizeTableChain = 256 // the table's and base chain's
	sizeSet        = 256 // a set's, with the flush of its elements
	sizeElements   = 64  // a set's elements, without them
	sizeElement    = 40  // each of them
	sizeRule       = 768 // a network's rule
	sizeDelete     = 128 // the deletion of a rule or set
)

// change is what a transaction does to one network: make it (net not
// nil), or remove it.
type change struct {
	name string
	net  *Network
	// keep says the network's rules are kept, rules are those deleted.
	keep  bool
	rules []*nftables.Rule
	// els are the elements of its sets, by family; flush says which
	// sets exist, to be emptied first.
	els   [len(families)][]nftables.SetElement
	flush [len(families)]bool
	// sets are the sets removed.
	sets []*nftables.Set
	// msgs counts its messages, size estimates their bytes.
	msgs, size int
}

// planNetwork plans the making of the network's sets with their elements,
// and of its rules unless have holds them already for its port and VNI.
// exists says which of its sets exist (and are to be emptied first): a set
// made in the transaction is not flushed, a message the less, and one the
// less of the kernel's searches of the table's list of sets, which for
// thousands of networks are most of Sync's time.
func planNetwork(n *Network, have []*nftables.Rule, exists [len(families)]bool) change {
	c := change{name: n.Name, net: n, flush: exists}
	v4, v6 := splitFamilies(n.Allowed)
	c.els = [2][]nftables.SetElement{elements(v4), elements(v6)}
	c.keep = len(have) == len(families)
	for _, r := range have {
		c.keep = c.keep && ruleComment(r) == n.comment()
	}
	if !c.keep {
		c.rules = have
	}
	c.msgs, c.size = len(c.rules), len(c.rules)*sizeDelete
	for i, els := range c.els {
		c.msgs++
		c.size += sizeSet
		if c.flush[i] {
			c.msgs++
		}
		parts := (len(els) + maxElementsPerMessage - 1) / maxElementsPerMessage
		c.msgs += parts
		c.size += parts*sizeElements + len(els)*sizeElement
		if !c.keep {
			c.msgs++
			c.size += sizeRule
		}
	}
	return c
}

// planRemoval plans the removal of a network's rules and sets.
func planRemoval(name string, rules []*nftables.Rule, sets []*nftables.Set) change {
	n := len(rules) + len(sets)
	return change{name: name, rules: rules, sets: sets, msgs: n, size: n * sizeDelete}
}

// queue adds the change to the batch. Each rule is added right after its
// set, which find relies on. f.mu is held.
func (f *Filter) queue(c *change) error {
	for _, r := range c.rules {
		_ = f.conn.DelRule(r) // a rule read has its handle
	}
	if c.net == nil {
		for _, s := range c.sets {
			f.conn.DelSet(s)
		}
		return nil
	}
	for i, fam := range families {
		s := setFor(f.table, c.name, fam)
		if err := f.conn.AddSet(s, nil); err != nil {
			return fmt.Errorf("vtepfilter: set %s: %w", s.Name, err)
		}
		if c.flush[i] {
			f.conn.FlushSet(s)
		}
		if err := f.addElements(s, c.els[i]); err != nil {
			return err
		}
		if !c.keep {
			f.conn.AddRule(rule(f.chain, c.net, fam, s))
		}
	}
	return nil
}

// maxElementsPerMessage bounds the elements of one message: they are one
// netlink attribute, whose length has 16 bits (65535 bytes at most), and
// one takes at most 36 bytes (an IPv6 interval's end: its key and its
// flag). The library does not check it: a longer list had its length
// wrap, and the kernel took the elements that the wrapped length covered
// and reported success (of 1100 IPv6 prefixes, 76 were in the set).
const maxElementsPerMessage = 1024

// addElements queues the adding of els to the set s, in as many messages
// as maxElementsPerMessage needs, none for none. f.mu is held.
func (f *Filter) addElements(s *nftables.Set, els []nftables.SetElement) error {
	for part := range slices.Chunk(els, maxElementsPerMessage) {
		if err := f.conn.SetAddElements(s, part); err != nil {
			return fmt.Errorf("vtepfilter: elements of set %s: %w", s.Name, err)
		}
	}
	return nil
}

// transact applies changes in one transaction, with the table and its base
// chain (made when missing). f.mu is held.
func (f *Filter) transact(changes []change) error {
	f.conn.AddTable(f.table)
	f.conn.AddChain(f.chain)
	for i := range changes {
		if err := f.queue(&changes[i]); err != nil {
			f.renew() // drops the batch
			return err
		}
	}
	return f.flush()
}

// Sync makes the table hold nets, as Install makes each, and removes the
// rules and sets of every other network except those keep (if not nil)
// tells to keep; when that leaves no network, it deletes the table. It is
// how the table is built again from the plugin's state at start.
//
// It lists the table once, then applies the changes in transactions of a
// few networks each (see maxBatchMessages): one transaction for thousands
// of networks is more than the kernel's answers, or the batch itself, fit
// in a netlink socket's buffers. Each network is changed whole in one
// transaction (its rules with its sets), and the networks do not depend
// on each other, so that what is given up is only that all of them change
// at once: while Sync runs, some networks are as they were and others as
// they will be, and if it stops half-way (an error, a crash) the table is
// left so, each network either wholly old or wholly new, until the next
// Sync (the plugin's next start) finishes it. The networks of a
// transaction that fails are each tried again alone, read again; the
// error names those that failed still, the others are made.
func (f *Filter) Sync(ctx context.Context, nets []Network, keep func(name string) bool) error {
	if keep == nil {
		keep = func(string) bool { return false }
	}
	wanted := make(map[string]bool, len(nets))
	for i := range nets {
		if err := nets[i].Validate(); err != nil {
			return fmt.Errorf("vtepfilter: %w", err)
		}
		if wanted[nets[i].Name] {
			return fmt.Errorf("vtepfilter: network %s given twice", nets[i].Name)
		}
		wanted[nets[i].Name] = true
	}
	have, err := f.begin(ctx)
	if err != nil {
		return err
	}
	defer f.mu.Unlock()
	gone := map[string]bool{}
	for name := range have {
		if !wanted[name] && !keep(name) {
			gone[name] = true
		}
	}
	if len(nets) == 0 && len(gone) == len(have) {
		return f.deleteTable()
	}
	sets, err := f.sets()
	if err != nil {
		return err
	}
	delSets := map[string][]*nftables.Set{}
	for name, s := range sets {
		owner := strings.TrimSuffix(strings.TrimSuffix(name, families[0].suffix), families[1].suffix)
		if !wanted[owner] && (gone[owner] || have[owner] == nil && !keep(owner)) {
			delSets[owner] = append(delSets[owner], s)
		}
	}
	changes := make([]change, 0, len(delSets)+len(nets))
	for _, owner := range slices.Sorted(maps.Keys(delSets)) {
		changes = append(changes, planRemoval(owner, have[owner], delSets[owner]))
		delete(gone, owner)
	}
	for _, name := range slices.Sorted(maps.Keys(gone)) { // rules without sets
		changes = append(changes, planRemoval(name, have[name], nil))
	}
	for i := range nets {
		n := &nets[i]
		changes = append(changes, planNetwork(n, have[n.Name], [2]bool{sets[n.Name+families[0].suffix] != nil, sets[n.Name+families[1].suffix] != nil}))
	}
	return f.apply(ctx, changes)
}

// apply applies changes in transactions within the budgets, in order; the
// changes of a transaction that fails are each done again alone, read
// again. f.mu is held.
func (f *Filter) apply(ctx context.Context, changes []change) error {
	var failed []string
	var first error
	for lo := 0; lo < len(changes); {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("vtepfilter: sync inet %s: %d of %d networks left as they were: %w", TableName, len(changes)-lo, len(changes), err)
		}
		hi, msgs, size := lo, 2, sizeTableChain
		for hi < len(changes) && (hi == lo || msgs+changes[hi].msgs <= maxBatchMessages && size+changes[hi].size <= maxBatchBytes) {
			msgs, size = msgs+changes[hi].msgs, size+changes[hi].size
			hi++
		}
		if f.transact(changes[lo:hi]) != nil {
			for i := lo; i < hi; i++ {
				if err := f.redo(&changes[i]); err != nil {
					failed = append(failed, changes[i].name)
					if first == nil {
						first = err
					}
				}
			}
		}
		lo = hi
	}
	if first != nil {
		names := failed[:min(len(failed), 8)]
		more := ""
		if len(failed) > len(names) {
			more = ", ..."
		}
		return fmt.Errorf("vtepfilter: sync inet %s: %d of %d networks failed (%s%s), the first: %w",
			TableName, len(failed), len(changes), strings.Join(names, ", "), more, first)
	}
	return nil
}

// redo does a change again in a transaction of its own, after reading the
// network's sets and rules again. f.mu is held.
func (f *Filter) redo(c *change) error {
	if c.net != nil {
		return f.install(c.net)
	}
	have, err := f.find(c.name, false)
	if err != nil {
		return err
	}
	return f.remove(c.name, have)
}

// SetAllowed replaces the allow-list of an installed network, in one
// transaction: the set is never seen empty or half-filled.
func (f *Filter) SetAllowed(ctx context.Context, name string, allowed []netip.Prefix) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := Network{Name: name, Port: 1, Allowed: allowed}
	if err := n.Validate(); err != nil {
		return fmt.Errorf("vtepfilter: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v4, v6 := splitFamilies(allowed)
	for i, ps := range [2][]netip.Prefix{v4, v6} {
		s := setFor(f.table, name, families[i])
		f.conn.FlushSet(s)
		if err := f.addElements(s, elements(ps)); err != nil {
			f.renew() // drops the batch
			return err
		}
	}
	if err := f.flush(); err != nil {
		err = classify(err)
		if errors.Is(err, unix.ENOENT) {
			err = fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return fmt.Errorf("vtepfilter: allow-list of %s: %w", name, err)
	}
	return nil
}

// Remove deletes the network's rules and sets, and the table once it holds
// no other network's sets. A network or table already gone is not an
// error. It reads the table's count of chains and sets, and the network's
// sets and rules (see find), not the other networks'.
func (f *Filter) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	use, ok, err := f.tableUse()
	if err != nil || !ok {
		return err
	}
	have, err := f.find(name, false)
	if err != nil {
		return err
	}
	// The table holds its base chain, and two sets for each network: it
	// holds no other network when it holds no other set.
	last := use >= 0 && use <= 1+have.setCount()
	if use < 0 {
		all, err := f.ours()
		if err != nil {
			return err
		}
		delete(all, name)
		last = len(all) == 0
	}
	if last {
		return f.deleteTable()
	}
	return f.remove(name, have)
}

// remove deletes the network's rules and sets, have, in one transaction;
// when that fails on a rule gone since it was read, or on a rule of the
// network's that find did not see (made by someone else), which keeps its
// set in use, it does so again with the chain's rules listed. f.mu is
// held.
func (f *Filter) remove(name string, have found) error {
	if len(have.rules) == 0 && have.setCount() == 0 {
		return nil
	}
	err := f.removeNetwork(name, have)
	if (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EBUSY)) && !have.listed {
		if have, err = f.find(name, true); err != nil {
			return err
		}
		err = f.removeNetwork(name, have)
	}
	if err != nil {
		return classify(fmt.Errorf("vtepfilter: remove %s from inet %s: %w", name, TableName, err))
	}
	return nil
}

// removeNetwork deletes the network's rules and its sets in one
// transaction. f.mu is held.
func (f *Filter) removeNetwork(name string, have found) error {
	for _, r := range have.rules {
		_ = f.conn.DelRule(r) // a rule read has its handle
	}
	for i, fam := range families {
		if have.sets[i] {
			f.conn.DelSet(setFor(f.table, name, fam))
		}
	}
	return f.flush()
}

// deleteTable deletes the table, if it exists. f.mu is held.
func (f *Filter) deleteTable() error {
	f.conn.DelTable(f.table)
	err := f.flush()
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return classify(fmt.Errorf("vtepfilter: delete table inet %s: %w", TableName, err))
}

// Counter counts the packets a network's rules dropped, and their bytes.
type Counter struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// State is a network's filter as the kernel holds it.
type State struct {
	// Name, Port and VNI are the network's, from its rules' comments.
	Name string `json:"name"`
	Port uint16 `json:"port"`
	VNI  uint32 `json:"vni"`
	// Allowed are the sources admitted, read back from its sets as the
	// fewest prefixes that cover them, IPv4 first.
	Allowed []netip.Prefix `json:"allowed"`
	// Dropped is what its rules dropped, both families together.
	Dropped Counter `json:"dropped"`
	// Rules counts its rules: 2 when it is whole.
	Rules int `json:"rules"`
}

// dropped sums the counters of rules.
func dropped(rules []*nftables.Rule) Counter {
	var c Counter
	for _, r := range rules {
		for _, e := range r.Exprs {
			if ce, ok := e.(*expr.Counter); ok {
				c.Packets += ce.Packets
				c.Bytes += ce.Bytes
			}
		}
	}
	return c
}

// Dropped reads what the network's rules dropped since they were made,
// reading its rules only (see find). A network the table does not hold is
// an error matching ErrNotFound.
func (f *Filter) Dropped(ctx context.Context, name string) (Counter, error) {
	if err := ctx.Err(); err != nil {
		return Counter{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	have, err := f.find(name, false)
	if err != nil {
		return Counter{}, err
	}
	if len(have.rules) == 0 {
		return Counter{}, fmt.Errorf("vtepfilter: network %s: %w", name, ErrNotFound)
	}
	return dropped(have.rules), nil
}

// DroppedAll reads what every network's rules dropped, by name, in one
// listing of the table's rules.
func (f *Filter) DroppedAll(ctx context.Context) (map[string]Counter, error) {
	have, err := f.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	out := make(map[string]Counter, len(have))
	for name, rules := range have {
		out[name] = dropped(rules)
	}
	return out, nil
}

// Read reads every network the table holds, sorted by name.
func (f *Filter) Read(ctx context.Context) ([]State, error) {
	have, err := f.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	sets, err := f.sets()
	if err != nil {
		return nil, err
	}
	out := make([]State, 0, len(have))
	for name, rules := range have {
		n, _ := parseComment(ruleComment(rules[0]))
		st := State{Name: name, Port: n.Port, VNI: n.VNI, Dropped: dropped(rules), Rules: len(rules), Allowed: []netip.Prefix{}}
		for _, fam := range families {
			s := sets[name+fam.suffix]
			if s == nil {
				continue
			}
			els, err := f.read.GetSetElements(s)
			if err != nil {
				return nil, classify(fmt.Errorf("vtepfilter: elements of set %s: %w", s.Name, err))
			}
			st.Allowed = append(st.Allowed, prefixesOf(els)...)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ReadNetNS reads every network the table holds in the network namespace
// fd refers to, as Read does, through a connection of its own.
func ReadNetNS(ctx context.Context, fd int) ([]State, error) {
	f, err := New(WithNetNSFd(fd))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Read(ctx)
}
