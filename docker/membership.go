package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Membership the plugins keep themselves. dockerd tells a global driver
// only of the nodes that join the swarm after the driver registered, and
// gives them by their advertise address (the swarm's control network), not
// by the data-path address VXLAN must go to. So the plugins of a swarm
// also gossip among themselves with hashicorp/memberlist (what Docker's
// own networkdb, Consul and Serf use): each binds to its node's advertise
// address on MembershipConfig.Port, tells the others its data-path address
// in its node metadata, finds the others through the seeds, the nodes
// dockerd announces and those the store remembers, and learns of a node
// that dies from memberlist's failure detection. Every message is
// encrypted and authenticated with the swarm-wide key (AES-GCM), so a
// machine on the underlay without the key can neither join nor change what
// a member says.
//
// How the sources combine (swarmPeers): the flood list of a network is
// the driver's Peers, the nodes dockerd announces, and the members, less
// this node's own addresses. A node dockerd announces by an advertise
// address that a member has been seen with is flooded to at that member's
// data-path address instead. A node dockerd said left (DiscoverDelete) is
// dropped whatever membership says, until dockerd announces it again; a
// member that leaves or dies is dropped whatever dockerd says, until it is
// a member again or dockerd announces it again.

// DefaultMembershipPort is the TCP and UDP port of the membership when
// MembershipConfig.Port is 0: next to the 7946 of Docker's own gossip.
const DefaultMembershipPort = 7947

// membershipRejoin is how often the membership tries again to join the
// seeds and the nodes dockerd announced that are not members.
const membershipRejoin = 10 * time.Second

// MembershipConfig configures the membership the plugins of a swarm keep
// among themselves. It is off when Key is empty.
type MembershipConfig struct {
	// Key is the swarm-wide key, the same on every node: 16, 24 or 32
	// bytes (AES-128, -192 or -256); ParseMembershipKey reads it from
	// base64. Empty turns the membership off.
	Key []byte
	// Port is the TCP and UDP port on the node's advertise address; 0
	// means DefaultMembershipPort.
	Port int
	// Seeds are addresses (host, or host:port) of members to join at
	// start: on a swarm whose nodes joined before the plugin was enabled,
	// one node's advertise address is enough.
	Seeds []string
	// BindAddr, when valid, is the address to bind to instead of the
	// advertise address dockerd gives in its Self announcement.
	BindAddr netip.Addr

	// tune changes memberlist's configuration (tests: faster probes).
	tune func(*memberlist.Config)
}

// ParseMembershipKey decodes a membership key given in standard base64,
// as `head -c 32 /dev/urandom | base64` writes one.
func ParseMembershipKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("membership key: not base64: %w; accepted: 16, 24 or 32 bytes in standard base64 (head -c 32 /dev/urandom | base64)", err)
	}
	if err := checkMembershipKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

// checkMembershipKey refuses a key memberlist cannot use.
func checkMembershipKey(key []byte) error {
	switch len(key) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("membership key: %d bytes; accepted: 16, 24 or 32 bytes (AES-128, -192, -256) in standard base64 "+
		"(head -c 32 /dev/urandom | base64), the same on every node", len(key))
}

// check refuses a membership configuration that cannot work: a bad key,
// or settings of a membership without its key.
func (c *MembershipConfig) check() error {
	if len(c.Key) == 0 {
		if len(c.Seeds) > 0 || c.Port != 0 || c.BindAddr.IsValid() {
			return errors.New("membership settings given without the membership key: the membership is encrypted and authenticated " +
				"with a swarm-wide key, and does not run without one; set the key (16, 24 or 32 bytes in base64) on every node")
		}
		return nil
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("membership port %d: accepted: 1..65535, or 0 for %d", c.Port, DefaultMembershipPort)
	}
	for _, s := range c.Seeds {
		if _, _, err := splitSeed(s, DefaultMembershipPort); err != nil {
			return err
		}
	}
	return checkMembershipKey(c.Key)
}

// splitSeed reads a seed as an address and a port (port when it names none).
func splitSeed(s string, port int) (netip.Addr, int, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), port, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("membership seed %q: accepted: an IP address, or address:port ([v6]:port)", s)
	}
	return ap.Addr().Unmap(), int(ap.Port()), nil
}

// member is another node's plugin, as the membership knows it.
type member struct {
	advertise netip.Addr // the address its membership is bound to
	data      netip.Addr // its data-path address: the VTEP to flood to
}

// memberMeta is the node metadata a plugin gossips.
type memberMeta struct {
	Data string `json:"data"` // the data-path address
}

// membership is the running memberlist of this node's plugin.
type membership struct {
	list  *memberlist.Memberlist
	bind  netip.Addr
	port  int
	seeds []string      // host:port
	stop  chan struct{} // closed when it stops: ends rejoinLoop
}

// startMembership starts the membership bound to bind (this node's
// advertise address), telling the others data as this node's data-path
// address. A membership already running on that address is kept; one on
// another address is stopped first.
func (d *Driver) startMembership(bind, data netip.Addr) {
	mc := &d.cfg.Membership
	if len(mc.Key) == 0 || !bind.IsValid() || !data.IsValid() {
		return
	}
	if mc.BindAddr.IsValid() {
		bind = mc.BindAddr
	}
	d.memberMu.Lock()
	defer d.memberMu.Unlock()
	if d.ml != nil && d.ml.bind == bind && d.selfData == data {
		return
	}
	d.stopMembershipLocked()
	port := mc.Port
	if port == 0 {
		port = DefaultMembershipPort
	}
	meta, err := json.Marshal(memberMeta{Data: data.String()})
	if err != nil {
		d.log.Error("membership not started", "error", err)
		return
	}
	conf := memberlist.DefaultLANConfig()
	conf.Name = net.JoinHostPort(bind.String(), strconv.Itoa(port))
	conf.BindAddr, conf.BindPort = bind.String(), port
	conf.AdvertiseAddr, conf.AdvertisePort = bind.String(), port
	conf.SecretKey = slices.Clone(mc.Key)
	conf.Delegate = metaDelegate(meta)
	conf.Logger = log.New(&memberlistLog{log: d.log}, "", 0)
	if mc.tune != nil {
		mc.tune(conf)
	}
	conf.Events = &memberEvents{d: d, self: conf.Name}
	list, err := memberlist.Create(conf)
	if err != nil {
		d.log.Error("membership not started: peers come from dockerd's announcements and the Peers setting only",
			"address", conf.Name, "error", err)
		return
	}
	m := &membership{list: list, bind: bind, port: port, stop: make(chan struct{})}
	for _, s := range mc.Seeds {
		a, p, _ := splitSeed(s, port) // checked by NewDriver
		m.seeds = append(m.seeds, net.JoinHostPort(a.String(), strconv.Itoa(p)))
	}
	d.ml, d.selfData = m, data
	d.log.Info("membership started", "address", conf.Name, "data-path address", data, "seeds", strings.Join(m.seeds, ","))
	go d.rejoinLoop(m)
}

// stopMembershipLocked stops the running membership without a leave
// message: a plugin that is restarted (an upgrade) is back before the
// others count it dead, so they keep flooding to it; one that stays down
// is dropped as a node that died. A join under way is not waited for: it
// fails on the closed list. d.memberMu is held.
func (d *Driver) stopMembershipLocked() {
	if d.ml == nil {
		return
	}
	close(d.ml.stop)
	if err := d.ml.list.Shutdown(); err != nil {
		d.log.Warn("membership shutdown", "error", err)
	}
	d.ml = nil
}

// stopMembership stops the membership, if it runs.
func (d *Driver) stopMembership() {
	d.memberMu.Lock()
	defer d.memberMu.Unlock()
	d.stopMembershipLocked()
}

// rejoinLoop joins the seeds and the nodes dockerd announced that are not
// members yet, at once and then every membershipRejoin.
func (d *Driver) rejoinLoop(m *membership) {
	failed := map[string]bool{} // targets whose failure was logged at Warn
	for {
		d.joinMissing(m, failed)
		select {
		case <-m.stop:
			return
		case <-time.After(membershipRejoin):
		}
	}
}

// joinMissing tries to join each target that is not a member.
func (d *Driver) joinMissing(m *membership, failed map[string]bool) {
	members := map[string]bool{}
	for _, n := range m.list.Members() {
		members[n.Address()] = true
	}
	for _, target := range d.joinTargets(m) {
		if members[target] {
			continue
		}
		select {
		case <-m.stop:
			return // stopped meanwhile
		default:
		}
		if _, err := m.list.Join([]string{target}); err != nil {
			lvl := slog.LevelWarn
			if failed[target] {
				lvl = slog.LevelDebug
			}
			failed[target] = true
			d.log.Log(context.Background(), lvl, "membership: cannot join; trying again every "+membershipRejoin.String()+
				" (is the plugin enabled there, with the same membership key and port?)", "node", target, "error", err)
			continue
		}
		delete(failed, target)
		d.log.Info("membership: joined", "node", target, "members", m.list.NumMembers())
	}
}

// joinTargets lists the seeds and the swarm nodes dockerd announced (at
// the membership's port), without this node.
func (d *Driver) joinTargets(m *membership) []string {
	self := net.JoinHostPort(m.bind.String(), strconv.Itoa(m.port))
	targets := slices.Clone(m.seeds)
	d.mu.Lock()
	for _, n := range d.nodes {
		if a, err := netip.ParseAddr(n.Address); err == nil && !n.Self && !d.departed[n.Address] {
			targets = append(targets, net.JoinHostPort(a.Unmap().String(), strconv.Itoa(m.port)))
		}
	}
	d.mu.Unlock()
	slices.Sort(targets)
	return slices.DeleteFunc(slices.Compact(targets), func(t string) bool { return t == self })
}

// memberChanged records that the member called name is alive with meta
// (alive true), or left or died, and updates the networks' peers.
func (d *Driver) memberChanged(name string, addr net.IP, meta []byte, alive bool) {
	d.peerMu.Lock()
	defer d.peerMu.Unlock()
	d.mu.Lock()
	before := d.swarmPeers()
	old, known := d.members[name]
	if !alive {
		delete(d.members, name)
	} else {
		adv, _ := netip.AddrFromSlice(addr)
		m := member{advertise: adv.Unmap()}
		var mm memberMeta
		var data netip.Addr
		err := json.Unmarshal(meta, &mm)
		if err == nil {
			data, err = netip.ParseAddr(mm.Data)
		}
		if err != nil {
			d.mu.Unlock()
			d.log.Warn("membership: a member without a data-path address is not flooded to", "member", name, "error", err)
			return
		}
		m.data = data.Unmap()
		d.members[name] = m
		d.dataOf[m.advertise] = m.data
	}
	after := d.swarmPeers()
	nets := d.vxlanNetworks()
	d.mu.Unlock()
	switch {
	case alive && !known:
		d.log.Info("membership: node joined", "member", name, "data-path address", d.members[name].data)
	case alive:
		d.log.Info("membership: node updated", "member", name, "data-path address", d.members[name].data)
	case known:
		d.log.Info("membership: node left or died", "member", name, "data-path address", old.data)
	}
	d.applyPeers(context.Background(), nets, before, after)
}

// memberEvents passes memberlist's events to the driver. memberlist calls
// it with its own locks held, and applying an event waits for the
// networks' locks, so events are queued and applied one at a time, in
// order, by one goroutine (applyEvents).
type memberEvents struct {
	d    *Driver
	self string // this node's name: its own join is no peer
}

// NotifyJoin is memberlist's: a node joined.
func (e *memberEvents) NotifyJoin(n *memberlist.Node) { e.queue(n, true) }

// NotifyUpdate is memberlist's: a node's metadata changed.
func (e *memberEvents) NotifyUpdate(n *memberlist.Node) { e.queue(n, true) }

// NotifyLeave is memberlist's: a node left or was found dead.
func (e *memberEvents) NotifyLeave(n *memberlist.Node) { e.queue(n, false) }

func (e *memberEvents) queue(n *memberlist.Node, alive bool) {
	if n.Name == e.self {
		return
	}
	ev := memberEvent{name: n.Name, addr: slices.Clone(n.Addr), meta: slices.Clone(n.Meta), alive: alive}
	e.d.eventMu.Lock()
	e.d.events = append(e.d.events, ev)
	start := !e.d.eventsRunning
	e.d.eventsRunning = true
	e.d.eventMu.Unlock()
	if start {
		go e.d.applyEvents()
	}
}

// memberEvent is one membership change waiting to be applied.
type memberEvent struct {
	name  string
	addr  net.IP
	meta  []byte
	alive bool
}

// applyEvents applies the queued membership events in order until none
// is left.
func (d *Driver) applyEvents() {
	for {
		d.eventMu.Lock()
		if len(d.events) == 0 {
			d.eventsRunning = false
			d.eventMu.Unlock()
			return
		}
		ev := d.events[0]
		d.events = d.events[1:]
		d.eventMu.Unlock()
		d.memberChanged(ev.name, ev.addr, ev.meta, ev.alive)
	}
}

// currentMembership returns the running membership, or nil.
func (d *Driver) currentMembership() *membership {
	d.memberMu.Lock()
	defer d.memberMu.Unlock()
	return d.ml
}

// metaDelegate is memberlist's Delegate: it gives this node's metadata
// and carries no messages of its own.
type metaDelegate []byte

// NodeMeta is memberlist's: this node's metadata.
func (m metaDelegate) NodeMeta(limit int) []byte {
	if len(m) > limit {
		return nil
	}
	return m
}

// NotifyMsg is memberlist's: no user messages are sent.
func (metaDelegate) NotifyMsg([]byte) {}

// GetBroadcasts is memberlist's: no user broadcasts.
func (metaDelegate) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState is memberlist's: no state beyond the metadata.
func (metaDelegate) LocalState(bool) []byte { return nil }

// MergeRemoteState is memberlist's: no state beyond the metadata.
func (metaDelegate) MergeRemoteState([]byte, bool) {}

// memberlistLog turns memberlist's log lines ("[WARN] memberlist: ...")
// into the driver's log at their level. A message that no key decrypts is
// a node with another key, or none: said so.
type memberlistLog struct {
	log *slog.Logger
}

func (l *memberlistLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	lvl := slog.LevelDebug
	switch {
	case strings.Contains(line, "[ERR]"):
		lvl = slog.LevelError
	case strings.Contains(line, "[WARN]"):
		lvl = slog.LevelWarn
	}
	if low := strings.ToLower(line); strings.Contains(low, "no installed keys could decrypt") || strings.Contains(low, "remote state is not encrypted") {
		lvl = slog.LevelError
		line += " (this node and the other do not have the same membership key: refused)"
	}
	l.log.Log(context.Background(), lvl, "membership: "+line)
	return len(p), nil
}

var _ io.Writer = (*memberlistLog)(nil)
