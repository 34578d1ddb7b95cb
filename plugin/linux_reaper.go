package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// ReapGroup is the link group (IFLA_GROUP) of the links the plugin has
// let go of and is about to delete. Deleting a link makes the kernel wait
// for an RCU grace period (about 16 ms); deleting a whole link group is one
// request and one wait, whatever the number of links in it. So the plugin
// answers DeleteEndpoint and DeleteNetwork as soon as their links are in
// this group, and deletes the group from the background.
//
// The group is the plugin's own: it puts only links it made there, and at
// start it deletes what a crash left in it, after checking that every
// link in it is one of its own.
const ReapGroup = 0x64767072 // "dvpr"

// reapRetry is how long the reaper waits after a failed deletion.
const reapRetry = time.Second

// A deletion waits for more links to delete with it, up to reapBatch links
// or reapDelay after the first: while the kernel deletes links it holds
// its lock on the network configuration (RTNL), and with thousands of
// networks a deletion holds it for long whatever the number of links in
// it, so fewer deletions mean fewer calls that wait for one. Drain, and a
// create that needs a released link's name or VNI, do not wait.
const (
	reapBatch = 128
	reapDelay = 250 * time.Millisecond
)

// reaper deletes the links put into ReapGroup, in batches. It deletes
// through a connection of its own (a clone of the host's, open while it has
// work), so that the host's requests do not wait for a deletion's answer.
type reaper struct {
	conn *rtlink.Conn // the host's: marks links
	log  *slog.Logger

	mu      sync.Mutex
	pending map[string]pendingLink // by name
	round   int                    // counts deletions started
	running bool                   // whether the background deletion runs
	urgent  int                    // callers of drain waiting: delete at once
	idle    *sync.Cond             // signalled when pending empties
	kick    chan struct{}          // wakes the background deletion early

	deleteMu sync.Mutex // serialises deletions of the group
}

// pendingLink is a link waiting in ReapGroup for its deletion.
type pendingLink struct {
	round int // the deletion round that will take it
	vni   uint32
	port  uint16
	vxlan bool
}

func newReaper(conn *rtlink.Conn) *reaper {
	r := &reaper{conn: conn, log: slog.New(slog.DiscardHandler), pending: map[string]pendingLink{}, kick: make(chan struct{}, 1)}
	r.idle = sync.NewCond(&r.mu)
	return r
}

// release puts the link into ReapGroup and has it deleted soon. The link
// is unusable from then on; its name, and for a vxlan its VNI and port,
// stay taken until it is deleted (see waitFor).
func (r *reaper) release(ctx context.Context, name string, p pendingLink) error {
	if err := r.conn.SetLinkGroup(ctx, name, ReapGroup); err != nil {
		if errors.Is(err, rtlink.ErrNotFound) {
			return nil
		}
		return err
	}
	r.mu.Lock()
	p.round = r.round
	r.pending[name] = p
	if len(r.pending) >= reapBatch {
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

// wake has the background deletion delete now. r.mu is held.
func (r *reaper) wake() {
	select {
	case r.kick <- struct{}{}:
	default: // already woken
	}
}

// run deletes the group until nothing is pending, each deletion after the
// batching wait. Links released while a deletion runs go with the next one.
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
		now := r.urgent > 0 || len(r.pending) >= reapBatch
		r.mu.Unlock()
		if !now {
			select {
			case <-r.kick:
			case <-time.After(reapDelay):
			}
		}
		if err := r.deleteGroup(context.Background(), conn); err != nil {
			r.log.Error("deleting released links; trying again", "group", ReapGroup, "error", err)
			time.Sleep(reapRetry)
		}
	}
}

// deleteGroup deletes ReapGroup in one request through conn, and forgets
// the links released before it started.
func (r *reaper) deleteGroup(ctx context.Context, conn *rtlink.Conn) error {
	r.deleteMu.Lock()
	defer r.deleteMu.Unlock()
	r.mu.Lock()
	round := r.round
	r.round++
	r.mu.Unlock()
	err := conn.DeleteLinkGroup(ctx, ReapGroup)
	if err != nil && !errors.Is(err, rtlink.ErrNotFound) {
		return err // ENODEV: the group was empty
	}
	r.mu.Lock()
	for name, p := range r.pending {
		if p.round <= round {
			delete(r.pending, name)
		}
	}
	if len(r.pending) == 0 {
		r.idle.Broadcast()
	}
	r.mu.Unlock()
	return nil
}

// waitFor deletes the released links now if one of them holds a name in
// names, or a vxlan's VNI on port, so that a new link may take it.
func (r *reaper) waitFor(ctx context.Context, names []string, vni uint32, port uint16, isVXLAN bool) error {
	r.mu.Lock()
	conflict := false
	for name, p := range r.pending {
		if contains(names, name) || (isVXLAN && p.vxlan && p.vni == vni && p.port == port) {
			conflict = true
			break
		}
	}
	r.mu.Unlock()
	if !conflict {
		return nil
	}
	return r.deleteGroup(ctx, r.conn)
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
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
// crash left in ReapGroup: released, but not yet deleted. If the group
// holds a link this plugin did not make, it is left alone, and the
// plugin's own are deleted one by one.
func (r *reaper) reapListed(ctx context.Context, links []*rtlink.Link) (int, error) {
	var ours []string
	foreign := false
	for _, l := range links {
		if l.Group != ReapGroup {
			continue
		}
		if isOwnedLink(l) {
			ours = append(ours, l.Name)
		} else {
			foreign = true
			r.log.Warn("a link this plugin did not make is in its link group; it is left alone", "link", l.Name, "group", ReapGroup)
		}
	}
	if len(ours) == 0 {
		return 0, nil
	}
	if !foreign {
		return len(ours), r.deleteGroup(ctx, r.conn)
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
		return strings.HasPrefix(l.Name, endpointHostIf("")) || strings.HasPrefix(l.Name, endpointContainerIf("")) || strings.HasPrefix(l.Name, isolatedPeerName(""))
	case linkKindMacvlan:
		return strings.HasPrefix(l.Name, endpointContainerIf(""))
	}
	return false
}

// pendingVXLAN describes a vxlan link to release.
func pendingVXLAN(cfg *vxlan.Config) pendingLink {
	return pendingLink{vxlan: true, vni: cfg.VNI, port: vxlan.EffectivePort(cfg.Port)}
}
