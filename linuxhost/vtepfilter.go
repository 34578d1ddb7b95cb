package linuxhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vtepfilter"
)

// The VTEP filter: a vxlan network's packets (its UDP port, its VNI) are
// admitted only from its VTEPs, through package vtepfilter's table. Which
// sources a network admits:
//
//   - the Peers of its spec (a swarm network's spec carries the swarm's
//     nodes there), and the peers AddPeer adds later, until RemovePeer;
//   - an EVPN network's remote VTEPs: the flood entries (all-zero MAC) the
//     routing daemon puts on its vxlan link, followed through neighbour
//     events and read again every evpnResync;
//   - a unicast Group, that address; a multicast Group, the prefixes of the
//     VTEP device's own addresses, unless VtepAllow is given;
//   - VtepAllow's prefixes.
//
// Where the kernel has no nf_tables, the host says so once and networks go
// unfiltered.

// evpnResync is how often the EVPN networks' flood entries are read again,
// for an event the watch missed (one between a network's first reading and
// the watch's start, or one the socket dropped).
const evpnResync = 30 * time.Second

// hostFilter is a Host's VTEP filter.
type hostFilter struct {
	byDefault bool
	log       *slog.Logger
	conn      *rtlink.Conn

	once sync.Once
	// open opens the filter; tests replace it to play a kernel without
	// nf_tables, which this machine's kernel cannot be made into.
	open func(opts ...vtepfilter.Option) (*vtepfilter.Filter, error)
	f    *vtepfilter.Filter
	// unavailable says why the host goes unfiltered, or is nil.
	unavailable error

	mu      sync.Mutex
	nets    map[string]*filtered // by network ID
	watch   context.CancelFunc   // the EVPN watch, once started
	watched sync.WaitGroup
}

// filtered is one filtered network's allow-list, by source.
type filtered struct {
	net     vtepfilter.Network // Allowed is computed by allowed()
	vxlan   string             // the vxlan link's name
	evpn    bool
	index   int            // an EVPN network's vxlan link's index
	static  []netip.Prefix // VtepAllow, Group
	peers   []netip.Addr
	remotes []netip.Addr // an EVPN network's flood entries
}

// allowed is the network's allow-list.
func (n *filtered) allowed() []netip.Prefix {
	out := slices.Clone(n.static)
	for _, a := range slices.Concat(n.peers, n.remotes) {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

// WithVTEPFilter has the host admit each vxlan network's VXLAN packets
// only from the network's VTEPs, dropping and counting the others (see
// package vtepfilter): for every network whose VtepFilter option is true,
// and for those without the option when byDefault. Without it, no network
// is filtered and the table is never touched.
func WithVTEPFilter(byDefault bool) Option {
	return func(h *Host) {
		h.filter = &hostFilter{byDefault: byDefault, nets: map[string]*filtered{}, open: vtepfilter.New}
	}
}

// filterName keys a network in the table: "d" and the first 12 characters
// of a Docker network's ID, "c" and those of a CNI network's, so that a
// front end's rebuild of the table spares the other's networks.
func filterName(id string) string {
	if fabric.IsCNINetworkID(id) {
		return "c" + fabric.ShortID(id)
	}
	return "d" + fabric.ShortID(id)
}

// isCNIFilterName reports whether a name in the table is a CNI network's.
func isCNIFilterName(name string) bool { return len(name) > 0 && name[0] == 'c' }

// filterWanted reports whether the network is to be filtered.
func (h *Host) filterWanted(spec *fabric.NetworkSpec) bool {
	if h.filter == nil || spec.Kind == fabric.KindParent {
		return false
	}
	if spec.VTEPFilter != nil {
		return *spec.VTEPFilter
	}
	return h.filter.byDefault
}

// ready opens and probes the filter once; it returns the filter, or nil
// when the host goes unfiltered (said once, in the log).
func (hf *hostFilter) ready(ctx context.Context) *vtepfilter.Filter {
	hf.once.Do(func() {
		var opts []vtepfilter.Option
		if ns := hf.conn.NetNS(); ns != nil {
			opts = append(opts, vtepfilter.WithNetNSFd(ns.Fd()))
		}
		f, err := hf.open(opts...)
		if err == nil {
			// Decided once for the host's life: not by a call's cancelling.
			if err = f.Probe(context.WithoutCancel(ctx)); err != nil {
				f.Close()
			}
		}
		switch {
		case errors.Is(err, vtepfilter.ErrUnsupported):
			hf.log.Warn("the kernel has no nf_tables: VXLAN ports are not filtered, every source is admitted", "error", err)
		case err != nil:
			hf.log.Error("the VTEP filter cannot be made: VXLAN ports are not filtered, every source is admitted", "error", err)
		default:
			hf.f = f
			return
		}
		hf.unavailable = err
	})
	return hf.f
}

// installFilter makes the network's rules and allow-list, or brings them
// in line with spec; a network not filtered, or a host that cannot filter,
// is left alone.
func (h *Host) installFilter(ctx context.Context, spec *fabric.NetworkSpec) error {
	if !h.filterWanted(spec) {
		return nil
	}
	f := h.filter.ready(ctx)
	if f == nil {
		return nil
	}
	n, err := h.filterOf(ctx, spec)
	if err != nil {
		return err
	}
	hf := h.filter
	hf.mu.Lock()
	defer hf.mu.Unlock()
	hf.nets[spec.ID] = n
	if n.evpn {
		hf.startWatch(h)
		if n.remotes, err = h.vx.Peers(ctx, n.vxlan); err != nil {
			delete(hf.nets, spec.ID)
			return fmt.Errorf("VTEP filter of %s: reading its flood entries: %w", spec.VXLAN.Name, err)
		}
	}
	n.net.Allowed = n.allowed()
	if err := f.Install(ctx, n.net); err != nil {
		delete(hf.nets, spec.ID)
		return fmt.Errorf("VTEP filter of %s: %w", spec.VXLAN.Name, err)
	}
	return nil
}

// filterOf is the network's filter as spec describes it, without the EVPN
// flood entries.
func (h *Host) filterOf(ctx context.Context, spec *fabric.NetworkSpec) (*filtered, error) {
	n := &filtered{
		net:    vtepfilter.Network{Name: filterName(spec.ID), Port: spec.Port(), VNI: spec.VXLAN.VNI},
		vxlan:  spec.VXLAN.Name,
		evpn:   spec.ControlPlane == fabric.ControlPlaneEVPN,
		static: slices.Clone(spec.VTEPAllow),
		peers:  slices.Clone(spec.Peers),
	}
	switch g := spec.VXLAN.Group; {
	case !g.IsValid():
	case !g.IsMulticast():
		n.static = append(n.static, netip.PrefixFrom(g, g.BitLen()))
	case len(spec.VTEPAllow) == 0:
		ps, err := h.devicePrefixes(ctx, spec.VXLAN.Device)
		if err != nil {
			return nil, fmt.Errorf("VTEP filter of %s: the prefixes of VTEP device %s: %w", spec.VXLAN.Name, spec.VXLAN.Device, err)
		}
		n.static = append(n.static, ps...)
	}
	if n.evpn {
		l, err := h.conn.LinkByName(ctx, spec.VXLAN.Name)
		if err != nil {
			return nil, fmt.Errorf("VTEP filter of %s: %w", spec.VXLAN.Name, err)
		}
		n.index = l.Index
	}
	return n, nil
}

// devicePrefixes are the prefixes of the addresses on the named link.
func (h *Host) devicePrefixes(ctx context.Context, name string) ([]netip.Prefix, error) {
	as, err := h.addresses(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range as {
		if !a.Prefix.Addr().IsLinkLocalUnicast() {
			out = append(out, a.Prefix.Masked())
		}
	}
	return out, nil
}

// removeFilter removes the network's rules and sets, and the table with
// the last network. Nothing to remove is not an error. A network not
// filtered is left alone, so that a spec that says so (the
// CNI plugin's view of a Docker network's segment) never takes away the
// filter of the network that owns it; a network made filtered and left
// when the daemon's default changes loses its rules at the next start
// (syncFilter).
func (h *Host) removeFilter(ctx context.Context, spec *fabric.NetworkSpec) error {
	if !h.filterWanted(spec) {
		return nil
	}
	f := h.filter.ready(ctx)
	if f == nil {
		return nil
	}
	h.filter.mu.Lock()
	delete(h.filter.nets, spec.ID)
	h.filter.mu.Unlock()
	if err := f.Remove(ctx, filterName(spec.ID)); err != nil {
		return fmt.Errorf("VTEP filter of %s: %w", spec.VXLAN.Name, err)
	}
	return nil
}

// changeFilterPeer adds peer to or removes it from the network's
// allow-list, if the network is filtered.
func (h *Host) changeFilterPeer(ctx context.Context, spec *fabric.NetworkSpec, peer netip.Addr, add bool) error {
	if h.filter == nil || h.filter.ready(ctx) == nil {
		return nil
	}
	hf := h.filter
	hf.mu.Lock()
	defer hf.mu.Unlock()
	n := hf.nets[spec.ID]
	if n == nil {
		return nil
	}
	has := slices.Contains(n.peers, peer)
	switch {
	case add && !has:
		n.peers = append(n.peers, peer)
	case !add && has && !slices.Contains(spec.Peers, peer):
		n.peers = slices.DeleteFunc(n.peers, func(a netip.Addr) bool { return a == peer })
	default:
		return nil
	}
	if err := hf.f.SetAllowed(ctx, n.net.Name, n.allowed()); err != nil {
		return fmt.Errorf("VTEP filter of %s: %w", spec.VXLAN.Name, err)
	}
	return nil
}

// syncFilter builds the table again from the networks the host holds:
// each of specs that is filtered gets its rules and allow-list, every
// other network of the same front end (a Docker network, since only the
// Docker front end reconciles) is removed, and the CNI front end's are
// left alone. It returns, per spec, why its filter could not be made.
func (h *Host) syncFilter(ctx context.Context, specs []*fabric.NetworkSpec, skip []error) []error {
	errs := make([]error, len(specs))
	if h.filter == nil {
		return errs
	}
	f := h.filter.ready(ctx)
	if f == nil {
		return errs
	}
	hf := h.filter
	var nets []vtepfilter.Network
	var which []int
	for i, spec := range specs {
		if skip[i] != nil || !h.filterWanted(spec) {
			continue
		}
		n, err := h.filterOf(ctx, spec)
		if err == nil && n.evpn {
			n.remotes, err = h.vx.Peers(ctx, n.vxlan)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		n.net.Allowed = n.allowed()
		hf.mu.Lock()
		hf.nets[spec.ID] = n
		if n.evpn {
			hf.startWatch(h)
		}
		hf.mu.Unlock()
		nets = append(nets, n.net)
		which = append(which, i)
	}
	if err := f.Sync(ctx, nets, isCNIFilterName); err != nil {
		for _, i := range which {
			errs[i] = fmt.Errorf("VTEP filter: %w", err)
		}
	}
	return errs
}

// startWatch starts following the EVPN networks' flood entries, once.
// hf.mu is held.
func (hf *hostFilter) startWatch(h *Host) {
	if hf.watch != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	hf.watch = cancel
	hf.watched.Add(2)
	go func() {
		defer hf.watched.Done()
		for ctx.Err() == nil {
			err := h.conn.WatchNeighbors(ctx, func(ev rtlink.NeighEvent) error { hf.floodEntry(ctx, ev); return nil })
			if ctx.Err() != nil {
				return
			}
			hf.log.Error("watching the EVPN networks' flood entries; watching again", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			hf.resync(ctx, h)
		}
	}()
	go func() {
		defer hf.watched.Done()
		t := time.NewTicker(evpnResync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				hf.resync(ctx, h)
			}
		}
	}()
}

// floodEntry follows one neighbour event: a flood entry added to or
// deleted from an EVPN network's vxlan link changes its allow-list.
func (hf *hostFilter) floodEntry(ctx context.Context, ev rtlink.NeighEvent) {
	nb := ev.Neigh
	if nb.Family != rtlink.FamilyBridge || !bytes.Equal(nb.MAC, zeroMAC[:]) || !nb.IP.IsValid() || ev.Type == rtlink.NeighMiss {
		return
	}
	hf.mu.Lock()
	defer hf.mu.Unlock()
	var n *filtered
	for _, c := range hf.nets {
		if c.evpn && c.index == nb.LinkIndex {
			n = c
		}
	}
	if n == nil {
		return
	}
	ip := nb.IP.Unmap()
	has := slices.Contains(n.remotes, ip)
	switch {
	case ev.Type == rtlink.NeighAdded && !has:
		n.remotes = append(n.remotes, ip)
	case ev.Type == rtlink.NeighDeleted && has:
		n.remotes = slices.DeleteFunc(n.remotes, func(a netip.Addr) bool { return a == ip })
	default:
		return
	}
	if err := hf.f.SetAllowed(ctx, n.net.Name, n.allowed()); err != nil {
		hf.log.Error("VTEP filter: following a remote VTEP", "vxlan", n.vxlan, "vtep", ip, "event", ev.Type, "error", err)
		return
	}
	hf.log.Info("VTEP filter: remote VTEP "+ev.Type.String(), "vxlan", n.vxlan, "vtep", ip)
}

// resync reads every EVPN network's flood entries again and sets the
// allow-lists that changed.
func (hf *hostFilter) resync(ctx context.Context, h *Host) {
	hf.mu.Lock()
	defer hf.mu.Unlock()
	for _, n := range hf.nets {
		if !n.evpn {
			continue
		}
		remotes, err := h.vx.Peers(ctx, n.vxlan)
		if err != nil {
			continue // being deleted: its filter goes with it
		}
		slices.SortFunc(remotes, netip.Addr.Compare)
		have := slices.SortedFunc(slices.Values(n.remotes), netip.Addr.Compare)
		if slices.Equal(remotes, have) {
			continue
		}
		n.remotes = remotes
		if err := hf.f.SetAllowed(ctx, n.net.Name, n.allowed()); err != nil {
			hf.log.Error("VTEP filter: reading the remote VTEPs again", "vxlan", n.vxlan, "error", err)
		}
	}
}

// Close stops following the EVPN networks' flood entries and closes the
// filter's connection; the table stays, as the links do.
func (h *Host) Close() error {
	if h.filter == nil {
		return nil
	}
	hf := h.filter
	hf.once.Do(func() {}) // a filter never opened is not opened now
	hf.mu.Lock()
	if hf.watch != nil {
		hf.watch()
	}
	hf.mu.Unlock()
	hf.watched.Wait()
	if hf.f != nil {
		return hf.f.Close()
	}
	return nil
}

// FilterStatus is a network's VTEP filter as the kernel has it.
type FilterStatus struct {
	// State is "filtered", "off" (the VtepFilter option or the daemon's
	// default), or "unfiltered" (the host cannot filter: Note says why).
	State string `json:"state"`
	// Name is where the network's rules are: "inet docker_vxlan_plugin"
	// and the network's name in the table (filtered networks only).
	Name string `json:"name,omitempty"`
	// Note says why a network is unfiltered.
	Note string `json:"note,omitempty"`
	// Allowed are the sources admitted, as the kernel's sets hold them.
	Allowed []netip.Prefix `json:"allowed"`
	// Dropped counts the packets and bytes dropped since the network's
	// rules were made.
	Dropped vtepfilter.Counter `json:"dropped"`
	// Drift lists how the table differs from what the network asks (its
	// rules missing, or for another port or VNI); empty when as asked.
	Drift []string `json:"drift,omitempty"`
}

// FilterRole names a network's VTEP filter among its checked items, as
// NetworkStatus.Err and the status table do.
const FilterRole = "vtep filter"

// Filter states.
const (
	FilterOn         = "filtered"
	FilterOff        = "off"
	FilterUnfiltered = "unfiltered"
)

// checkFilter reads the network's filter from the kernel, with drift when
// the network should be filtered and the table does not hold its rules;
// nil on a host without the filter.
func (h *Host) checkFilter(ctx context.Context, spec *fabric.NetworkSpec) *FilterStatus {
	if h.filter == nil {
		return nil
	}
	if !h.filterWanted(spec) {
		return &FilterStatus{State: FilterOff, Allowed: []netip.Prefix{}}
	}
	f := h.filter.ready(ctx)
	if f == nil {
		note := "the host was closed"
		if h.filter.unavailable != nil {
			note = h.filter.unavailable.Error()
		}
		return &FilterStatus{State: FilterUnfiltered, Note: note, Allowed: []netip.Prefix{}}
	}
	name := filterName(spec.ID)
	st := &FilterStatus{State: FilterOn, Name: "inet " + vtepfilter.TableName + " " + name, Allowed: []netip.Prefix{}}
	states, err := f.Read(ctx)
	if err != nil {
		st.Drift = append(st.Drift, fmt.Sprintf("reading the table: %v", err))
		return st
	}
	i := slices.IndexFunc(states, func(s vtepfilter.State) bool { return s.Name == name })
	if i < 0 {
		st.Drift = append(st.Drift, "rules missing: every source is admitted")
		return st
	}
	s := states[i]
	st.Allowed, st.Dropped = s.Allowed, s.Dropped
	switch {
	case s.Rules != 2:
		st.Drift = append(st.Drift, fmt.Sprintf("%d rules, want 2 (IPv4 and IPv6)", s.Rules))
	case s.Port != spec.Port() || s.VNI != spec.VXLAN.VNI:
		st.Drift = append(st.Drift, fmt.Sprintf("rules for port %d VNI %d, want port %d VNI %d", s.Port, s.VNI, spec.Port(), spec.VXLAN.VNI))
	}
	return st
}

// FilterDrops reads the packets each filtered network of specs had
// dropped by its VTEP filter, by network ID, in one listing of the
// filter's rules: the numbers status shows, for the metrics. A host that
// does not filter reads none.
func (h *Host) FilterDrops(ctx context.Context, specs []*fabric.NetworkSpec) (map[string]uint64, error) {
	out := map[string]uint64{}
	if h.filter == nil || h.filter.ready(ctx) == nil {
		return out, nil
	}
	all, err := h.filter.f.DroppedAll(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range specs {
		if c, ok := all[filterName(s.ID)]; ok && h.filterWanted(s) {
			out[s.ID] = c.Packets
		}
	}
	return out, nil
}

// VTEPFilterDropped returns what the network's VTEP filter dropped since
// its rules were made: the number `status` shows, for a metrics exporter.
// A network that is not filtered (off, or a host that cannot filter) is an
// error matching vtepfilter.ErrNotFound.
func (h *Host) VTEPFilterDropped(ctx context.Context, spec *fabric.NetworkSpec) (vtepfilter.Counter, error) {
	if !h.filterWanted(spec) || h.filter.ready(ctx) == nil {
		return vtepfilter.Counter{}, fmt.Errorf("network %s is not filtered: %w", fabric.ShortID(spec.ID), vtepfilter.ErrNotFound)
	}
	return h.filter.f.Dropped(ctx, filterName(spec.ID))
}
