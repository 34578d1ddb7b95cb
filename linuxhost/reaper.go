package linuxhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/reapgroup"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// The deletion groups (package reapgroup) hold the links the host has let
// go of and is about to delete. Deleting a link makes the kernel wait for
// an RCU grace period (about 16 ms);
// deleting a whole link group of veths and vxlan links is one request and
// about one wait, whatever the number of links in it. So the plugin
// answers DeleteEndpoint and DeleteNetwork as soon as their links are in
// one of these groups, and deletes the groups from the background, one
// per request.
//
// Bridges are the exception: the kernel waits a grace period for each
// bridge it deletes, however the deletion is asked, and holds its lock on
// the network configuration (RTNL) all along, so every other change on
// the host (a container start among them) waits for the whole request.
// A group therefore takes at most reapBridges bridges, and the next ones
// go into the next group. Only with more than reapgroup.Count×reapBridges
// bridges waiting does a group take more.
//
// The groups are the plugin's own: it puts only links it made there, and
// at start it deletes what a crash left in them, after checking that every
// link in them is one of its own. reapGroup is the first of them.
const (
	reapGroup  = reapgroup.First
	reapGroups = reapgroup.Count
)

// reapRetry is how long the reaper waits after a failed deletion.
const reapRetry = time.Second

// A deletion waits for more links to delete with it, up to reapBatch links
// or reapDelay after the first, so that many veths and vxlan links share
// one grace period; a group full of bridges (reapBridges) is deleted at
// once, since batching bridges saves little: deleting 8 bridges in one
// request costs the kernel about 21 ms a bridge, 64 about 17 ms, one
// alone 39 ms. Drain, and a create that needs a released link's name or
// VNI, do not wait.
const (
	reapBatch   = 128
	reapBridges = 8
	reapDelay   = 250 * time.Millisecond
)

// reaper deletes the links put into the deletion groups, a group at a
// time. It deletes through a connection of its own (a clone of the
// host's, open while it has work), so that the host's requests do not wait
// for a deletion's answer.
type reaper struct {
	conn    *rtlink.Conn // the host's: marks links
	log     *slog.Logger
	observe func(links int, took time.Duration) // told of each deletion; nil: none

	mu      sync.Mutex
	pending map[string]pendingLink // by name
	inGroup [reapGroups]int        // pending links by group
	group   int                    // the group released links go into: reapGroup+group
	bridges int                    // bridges released into that group since it was opened
	round   int                    // counts deletions started
	running bool                   // whether the background deletion runs
	urgent  int                    // callers of drain waiting: delete at once
	idle    *sync.Cond             // signalled when pending empties
	kick    chan struct{}          // wakes the background deletion early

	// releasing is read-held by each release from the moment it moves a
	// link into a group until it records it as pending; waitFor takes it
	// whole, so that it sees every link a finished DeleteNetwork let go.
	releasing sync.RWMutex

	deleteMu sync.Mutex // serialises deletions
}

// pendingLink is a link waiting in a deletion group.
type pendingLink struct {
	group  int // its group: reapGroup+group
	round  int // deletions started before it was recorded
	vni    uint32
	port   uint16
	sock   udpSocket // the UDP socket a vxlan link holds on port while up
	vxlan  bool
	bridge bool
}

// udpSocket is what the kernel compares when vxlan links share the UDP
// socket of a port (vxlan_find_sock): the receive flags
// (VXLAN_F_RCV_FLAGS: GBP, GPE, RCO, zero IPv6 checksums accepted,
// metadata, VNI filter) and the address family; a link with
// CollectMetadata opens both families. Two links whose families meet and
// whose flags differ cannot be up on one port at once: the second one's
// socket finds the port taken (EADDRINUSE).
type udpSocket struct {
	flags  uint8
	v4, v6 bool
	other  bool // the socket is in another namespace (LinkNetNSID)
}

// socketOf returns the UDP socket the vxlan link cfg opens when up.
func socketOf(cfg *vxlan.Config) udpSocket {
	var s udpSocket
	for i, set := range []bool{cfg.GBP, cfg.GPE, cfg.UDPZeroChecksum6RX, cfg.RemoteChecksumRX, cfg.RemoteChecksumNoPartial,
		cfg.CollectMetadata, cfg.VNIFilter} {
		if set {
			s.flags |= 1 << i
		}
	}
	ipv6 := cfg.Group.Is6() || cfg.Local.Is6()
	s.v4, s.v6 = !ipv6 || cfg.CollectMetadata, ipv6 || cfg.CollectMetadata
	s.other = cfg.LinkNetNSID != nil
	return s
}

// clashes reports whether a socket like s and one like o cannot be open
// on one UDP port of one namespace together.
func (s udpSocket) clashes(o udpSocket) bool {
	return !s.other && !o.other && s.flags != o.flags && (s.v4 && o.v4 || s.v6 && o.v6)
}

// holds reports whether the pending link p holds what the vxlan link cfg
// needs: its VNI on its port, or its port with a socket it cannot share.
func (p pendingLink) holds(cfg *vxlan.Config) bool {
	port := vxlan.EffectivePort(cfg.Port)
	return p.vxlan && p.port == port && (p.vni == cfg.VNI || p.sock.clashes(socketOf(cfg)))
}

func newReaper(conn *rtlink.Conn) *reaper {
	r := &reaper{conn: conn, log: slog.New(slog.DiscardHandler), pending: map[string]pendingLink{}, kick: make(chan struct{}, 1)}
	r.idle = sync.NewCond(&r.mu)
	return r
}

// release puts the link into a deletion group and has it deleted soon. The
// link is unusable from then on; its name, and for a vxlan its VNI and
// port, stay taken until it is deleted (see waitFor).
func (r *reaper) release(ctx context.Context, name string, p pendingLink) error {
	r.releasing.RLock()
	defer r.releasing.RUnlock()
	r.mu.Lock()
	group := r.group
	if p.bridge {
		if r.bridges++; r.bridges >= reapBridges {
			r.nextGroup() // full: the next releases go into the next one
		}
	}
	r.mu.Unlock()
	if err := r.conn.SetLinkGroup(ctx, name, reapGroup+uint32(group)); err != nil {
		if errors.Is(err, rtlink.ErrNotFound) {
			return nil
		}
		return err
	}
	r.mu.Lock()
	p.group, p.round = group, r.round
	r.pending[name] = p
	r.inGroup[group]++
	if len(r.pending) >= reapBatch || group != r.group {
		r.wake()
	}
	if !r.running {
		r.running = true
		// Cloned here, while the host's connection is surely open.
		conn, err := r.conn.Clone()
		if err != nil {
			r.log.Warn("deleting released links on the host's connection", "error", err)
			conn = nil
		}
		go r.run(conn)
	}
	r.mu.Unlock()
	return nil
}

// nextGroup opens the next deletion group for releases. r.mu is held.
func (r *reaper) nextGroup() {
	r.group, r.bridges = (r.group+1)%reapGroups, 0
}

// oldestGroup is the group to delete next: the one with pending links
// opened longest ago, and whether releases have moved on from it. r.mu
// is held and some link is pending.
func (r *reaper) oldestGroup() (group int, closed bool) {
	for i := 1; i <= reapGroups; i++ {
		g := (r.group + i) % reapGroups
		if r.inGroup[g] > 0 {
			return g, g != r.group
		}
	}
	return r.group, false
}

// wake has the background deletion delete now. r.mu is held.
func (r *reaper) wake() {
	select {
	case r.kick <- struct{}{}:
	default: // already woken
	}
}

// run deletes the groups until nothing is pending, the oldest first. It
// waits for more links before deleting the group releases still go into,
// and deletes a closed group (full of bridges, or left behind) at once.
func (r *reaper) run(conn *rtlink.Conn) {
	if conn == nil {
		conn = r.conn
	} else {
		defer conn.Close()
	}
	for {
		r.mu.Lock()
		if len(r.pending) == 0 {
			r.running = false
			r.idle.Broadcast()
			r.mu.Unlock()
			return
		}
		group, closed := r.oldestGroup()
		now := r.urgent > 0 || len(r.pending) >= reapBatch || closed
		r.mu.Unlock()
		if !now {
			select {
			case <-r.kick:
			case <-time.After(reapDelay):
			}
		}
		if err := r.deleteGroup(context.Background(), conn, group); err != nil {
			r.log.Error("deleting released links; trying again", "group", reapGroup+group, "error", err)
			time.Sleep(reapRetry)
		}
	}
}

// deleteGroup deletes the deletion group reapGroup+group in one request
// through conn, and forgets the links released into it before it started.
// Releases move on to the next group if they still went into this one.
func (r *reaper) deleteGroup(ctx context.Context, conn *rtlink.Conn, group int) error {
	r.deleteMu.Lock()
	defer r.deleteMu.Unlock()
	r.mu.Lock()
	round := r.round
	r.round++
	if group == r.group {
		r.nextGroup()
	}
	r.mu.Unlock()
	start := time.Now()
	err := conn.DeleteLinkGroup(ctx, reapGroup+uint32(group))
	if err != nil && !errors.Is(err, rtlink.ErrNotFound) {
		return err // ENODEV: the group was empty
	}
	took := time.Since(start)
	r.mu.Lock()
	deleted := 0
	for name, p := range r.pending {
		if p.group == group && p.round <= round {
			delete(r.pending, name)
			r.inGroup[group]--
			deleted++
		}
	}
	if len(r.pending) == 0 {
		r.idle.Broadcast()
	}
	r.mu.Unlock()
	if r.observe != nil && deleted > 0 {
		r.observe(deleted, took)
	}
	return nil
}

// released counts the links waiting in the deletion groups.
func (r *reaper) released() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// waitFor deletes now the groups of the released links that hold a name
// in names, or, when vx is not nil, what the vxlan link vx needs (see
// pendingLink.holds), so that a new link may take it. It reports whether
// there were any.
func (r *reaper) waitFor(ctx context.Context, names []string, vx *vxlan.Config) (bool, error) {
	// A barrier: releases under way have recorded their links.
	r.releasing.Lock()
	r.releasing.Unlock() //lint:ignore SA2001 the empty critical section is the point
	r.mu.Lock()
	var groups []int
	for name, p := range r.pending {
		if (slices.Contains(names, name) || vx != nil && p.holds(vx)) && !slices.Contains(groups, p.group) {
			groups = append(groups, p.group)
		}
	}
	r.mu.Unlock()
	for _, g := range groups {
		if err := r.deleteGroup(ctx, r.conn, g); err != nil {
			return false, err
		}
	}
	return len(groups) > 0, nil
}

// drain returns once every released link is deleted, or ctx is done.
func (r *reaper) drain(ctx context.Context) error {
	r.mu.Lock()
	r.urgent++
	r.wake()
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.urgent--
		r.mu.Unlock()
	}()
	done := make(chan struct{})
	go func() {
		r.mu.Lock()
		for len(r.pending) > 0 {
			r.idle.Wait()
		}
		r.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for released links to be deleted: %w", ctx.Err())
	}
}

// reapListed deletes the links of a listing of the host's links that a
// crash left in the deletion groups: released, but not yet deleted. If the
// groups hold a link this plugin did not make, it is left alone, and the
// plugin's own are deleted one by one.
func (r *reaper) reapListed(ctx context.Context, links []*rtlink.Link) (int, error) {
	var ours []string
	var groups []uint32
	foreign := false
	for _, l := range links {
		if !reapgroup.Contains(l.Group) {
			continue
		}
		if isOwnedLink(l) {
			ours = append(ours, l.Name)
			if !slices.Contains(groups, l.Group) {
				groups = append(groups, l.Group)
			}
		} else {
			foreign = true
			r.log.Warn("a link this plugin did not make is in one of its link groups; it is left alone", "link", l.Name, "group", l.Group)
		}
	}
	if len(ours) == 0 {
		return 0, nil
	}
	if !foreign {
		for _, g := range groups {
			if err := r.conn.DeleteLinkGroup(ctx, g); err != nil && !errors.Is(err, rtlink.ErrNotFound) {
				return 0, err
			}
		}
		return len(ours), nil
	}
	for _, name := range ours {
		if err := r.conn.DeleteLink(ctx, name); err != nil && !errors.Is(err, rtlink.ErrNotFound) {
			return 0, err
		}
	}
	return len(ours), nil
}

// isOwnedLink tells a link this plugin made: one carrying an owner mark,
// or a container link (a veth or macvlan named from an endpoint ID).
func isOwnedLink(l *rtlink.Link) bool {
	if isOwnerMark(l.Alias) || l.Alias == vlanMark {
		return true
	}
	switch l.Kind {
	case linkKindVeth:
		return strings.HasPrefix(l.Name, fabric.HostIfName("")) || strings.HasPrefix(l.Name, fabric.ContainerIfName("")) ||
			strings.HasPrefix(l.Name, isolatedPeerName(""))
	case linkKindMacvlan:
		return strings.HasPrefix(l.Name, fabric.ContainerIfName(""))
	}
	return false
}

// pendingVXLAN describes a vxlan link to release.
func pendingVXLAN(cfg *vxlan.Config) pendingLink {
	return pendingLink{vxlan: true, vni: cfg.VNI, port: vxlan.EffectivePort(cfg.Port), sock: socketOf(cfg)}
}
