package vxlan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// VNIRange is one VNI, or an inclusive range of VNIs, carried by a VNI
// filtering device: a vxlan link created with CollectMetadata and VNIFilter
// set (Linux 5.18 and later, iproute2's `external vnifilter`), which carries
// many VNIs on one device instead of one device per VNI. Its VNIs are
// managed with [Client.AddVNI], [Client.DeleteVNI] and [Client.VNIs]
// (iproute2's `bridge vni`).
type VNIRange struct {
	// First is the first VNI, 1 to MaxVNI. (The kernel takes a lone VNI 0
	// for no VNI at all, so 0 cannot be added.)
	First uint32
	// Last is the last VNI of a range, First to MaxVNI; 0 means First alone.
	// VNIs always reports it, equal to First for a single VNI.
	Last uint32
	// Group is where these VNIs' broadcast, unknown-unicast and multicast
	// traffic goes: a multicast group (which needs the device to have an
	// underlay Device) or a unicast remote VTEP. The zero Addr uses the
	// device's own Group, if it has one. The kernel keeps it as a default
	// FDB entry (all-zero MAC) for each VNI.
	Group netip.Addr
}

// last returns the last VNI of r.
func (r VNIRange) last() uint32 {
	if r.Last == 0 {
		return r.First
	}
	return r.Last
}

// String formats r as iproute2 does: "10", "20-29", "30 group 239.1.1.30".
func (r VNIRange) String() string {
	s := fmt.Sprint(r.First)
	if l := r.last(); l != r.First {
		s += fmt.Sprintf("-%d", l)
	}
	if r.Group.IsValid() {
		if r.Group.IsMulticast() {
			s += " group " + r.Group.String()
		} else {
			s += " remote " + r.Group.String()
		}
	}
	return s
}

// validate checks r as AddVNI sends it; field names the argument in errors.
func (r VNIRange) validate(field string) error {
	bad := func(f string, v any, accepted string) error {
		return &ConfigError{Field: field + "." + f, Value: v, Accepted: accepted}
	}
	if r.First == 0 || r.First > MaxVNI {
		return bad("First", r.First, "1..16777215")
	}
	if r.Last != 0 && (r.Last < r.First || r.Last > MaxVNI) {
		return bad("Last", r.Last, fmt.Sprintf("0 (First alone) or %d..16777215", r.First))
	}
	if r.Group.IsValid() && (r.Group.IsUnspecified() || r.Group.Is4In6()) {
		return bad("Group", r.Group, "a multicast group or unicast address, IPv4 or IPv6, or the zero Addr for the device's own")
	}
	return nil
}

// entry returns r as rtlink sends it: no END for a single VNI, as iproute2.
func (r VNIRange) entry() rtlink.VNIFilterEntry {
	e := rtlink.VNIFilterEntry{Start: r.First, Group: r.Group}
	if l := r.last(); l != r.First {
		e.End = l
	}
	return e
}

// vxlanLink looks up the vxlan link called name for op ("vnifilter",
// "proxy entry", ...): a link of another kind gives ErrWrongKind.
func (c *Client) vxlanLink(ctx context.Context, op, name string) (*rtlink.Link, error) {
	l, err := c.conn.LinkByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := checkKind(op, l); err != nil {
		return nil, err
	}
	return l, nil
}

// vniFilterError wraps err for op on the link called name. The kernel's
// answer for a vxlan link that is not in VNI filtering mode (notFiltering:
// EOPNOTSUPP to a change, EINVAL to a dump) is explained; either way the
// kernel's error stays matchable with errors.Is.
func vniFilterError(op, name string, err error, notFiltering linuxabi.Errno) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, notFiltering) {
		return fmt.Errorf("vxlan: %s %s: not a VNI filtering device (create it with CollectMetadata and VNIFilter set): %w", op, name, err)
	}
	return fmt.Errorf("vxlan: %s %s: %w", op, name, err)
}

// AddVNI adds VNIs and VNI ranges to the VNI filtering device called name,
// in one request. Adding a VNI the device already carries sets its Group.
//
// Every range is checked before anything is sent; a bad one gives a
// *ConfigError naming it (vnis[i].First, .Last or .Group). When the kernel
// refuses a VNI part way — "VNI in use" (matching ErrExists) when another
// VNI filtering device on the same port carries it — the VNIs this call
// added before it are removed and the groups it changed are set back, so a
// failed AddVNI leaves the device as it was. A vxlan link that is not in VNI
// filtering mode gives an error matching ErrNotSupported; a link of another
// kind ErrWrongKind.
func (c *Client) AddVNI(ctx context.Context, name string, vnis ...VNIRange) error {
	if len(vnis) == 0 {
		return &ConfigError{Field: "vnis", Value: "none", Accepted: "at least one VNIRange"}
	}
	entries := make([]rtlink.VNIFilterEntry, len(vnis))
	for i, r := range vnis {
		if err := r.validate(fmt.Sprintf("vnis[%d]", i)); err != nil {
			return err
		}
		entries[i] = r.entry()
	}
	l, err := c.vxlanLink(ctx, "vnifilter", name)
	if err != nil {
		return err
	}
	d, _ := l.Data.(*rtlink.VXLAN)
	if d == nil {
		d = &rtlink.VXLAN{}
	}
	if d.Link == nil || *d.Link == 0 {
		for i, r := range vnis {
			if r.Group.IsMulticast() {
				return &ConfigError{Field: fmt.Sprintf("vnis[%d].Group", i), Value: r.Group,
					Accepted: fmt.Sprintf("a unicast remote: %s has no underlay Device, which a multicast group needs", name)}
			}
		}
	}
	// A link without VNI filtering is left to the kernel, which refuses
	// the whole request (EOPNOTSUPP): there is nothing to undo then.
	filtering := d.VNIFilter != nil && *d.VNIFilter
	var before []rtlink.VNIFilterEntry
	if filtering {
		if before, err = c.conn.VNIFilter(ctx, l.Index, false); err != nil {
			return vniFilterError("list VNIs of", name, err, linuxabi.EINVAL)
		}
	}
	err = c.conn.AddVNIFilter(ctx, l.Index, entries)
	if err == nil {
		return nil
	}
	err = vniFilterError("add VNIs to", name, err, linuxabi.EOPNOTSUPP)
	if !filtering {
		return err
	}
	if rerr := c.undoAddVNI(context.WithoutCancel(ctx), l.Index, vnis, before); rerr != nil {
		return fmt.Errorf("%w; and undoing the VNIs added before the failure failed: %v", err, rerr)
	}
	return err
}

// undoAddVNI puts the requested VNIs of the device back as they were in
// before: those added are deleted, those whose group changed get it back.
func (c *Client) undoAddVNI(ctx context.Context, index int, vnis []VNIRange, before []rtlink.VNIFilterEntry) error {
	after, err := c.conn.VNIFilter(ctx, index, false)
	if err != nil {
		return err
	}
	var remove, restore []rtlink.VNIFilterEntry
	for _, s := range carried(vnis, after) {
		for v := s.lo; v <= s.hi; v++ {
			now, _ := lookupVNI(after, v)
			was, wasThere := lookupVNI(before, v)
			switch {
			case !wasThere:
				remove = appendVNI(remove, v, netip.Addr{})
			case now != was:
				restore = appendVNI(restore, v, was)
			}
		}
	}
	// Groups first: deleting a VNI makes the kernel leave its multicast
	// group even when other VNIs of the device still use it (seen on 6.18,
	// when the device is the only user of its UDP socket), and changing the
	// group of such a VNI afterwards fails with EADDRNOTAVAIL.
	if len(restore) > 0 {
		if err := c.conn.AddVNIFilter(ctx, index, restore); err != nil {
			return err
		}
	}
	if len(remove) > 0 {
		return c.conn.DeleteVNIFilter(ctx, index, remove)
	}
	return nil
}

// span is an inclusive run of VNIs.
type span struct{ lo, hi uint32 }

// carried returns the VNIs of the ranges in vnis that the device carries
// according to have (as the kernel lists them, in ascending order): sorted
// runs that do not overlap, so each VNI comes once even when the ranges
// overlap.
func carried(vnis []VNIRange, have []rtlink.VNIFilterEntry) []span {
	var spans []span
	for _, r := range vnis {
		for _, e := range have {
			if lo, hi := max(r.First, e.Start), min(r.last(), lastOf(e)); lo <= hi {
				spans = append(spans, span{lo, hi})
			}
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	var out []span
	for _, s := range spans {
		if n := len(out); n > 0 && s.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, s.hi)
			continue
		}
		out = append(out, s)
	}
	return out
}

// lookupVNI reports whether the VNI v is in entries (in ascending order, as
// the kernel lists them), and with which group.
func lookupVNI(entries []rtlink.VNIFilterEntry, v uint32) (netip.Addr, bool) {
	i := sort.Search(len(entries), func(i int) bool { return lastOf(entries[i]) >= v })
	if i < len(entries) && entries[i].Start <= v {
		return entries[i].Group, true
	}
	return netip.Addr{}, false
}

// lastOf returns the last VNI of an entry the kernel reported, which has no
// End for a single VNI.
func lastOf(e rtlink.VNIFilterEntry) uint32 {
	if e.End == 0 {
		return e.Start
	}
	return e.End
}

// appendVNI adds the VNI v with group g to entries, extending the last
// range when v follows it with the same group.
func appendVNI(entries []rtlink.VNIFilterEntry, v uint32, g netip.Addr) []rtlink.VNIFilterEntry {
	if n := len(entries); n > 0 {
		last := &entries[n-1]
		if lastOf(*last)+1 == v && last.Group == g {
			last.End = v
			return entries
		}
	}
	return append(entries, rtlink.VNIFilterEntry{Start: v, Group: g})
}

// DeleteVNI removes VNIs and VNI ranges from the VNI filtering device
// called name; their Group is ignored. VNIs the device does not carry are
// skipped, so deleting what is already gone is not an error and a range
// may span gaps. The kernel also removes the default FDB entry of each
// VNI's group.
//
// Kernel behaviour to know (seen on 6.18): deleting a VNI whose Group is a
// multicast group makes the underlay leave that group even when other VNIs
// of the device still use it, because the kernel looks only at other
// devices' groups; those VNIs then receive no more of the group's traffic
// until the device is set down and up again, which joins every group anew.
func (c *Client) DeleteVNI(ctx context.Context, name string, vnis ...VNIRange) error {
	if len(vnis) == 0 {
		return &ConfigError{Field: "vnis", Value: "none", Accepted: "at least one VNIRange"}
	}
	for i, r := range vnis {
		r.Group = netip.Addr{}
		if err := r.validate(fmt.Sprintf("vnis[%d]", i)); err != nil {
			return err
		}
	}
	l, err := c.vxlanLink(ctx, "vnifilter", name)
	if err != nil {
		return err
	}
	have, err := c.conn.VNIFilter(ctx, l.Index, false)
	if err != nil {
		return vniFilterError("delete VNIs from", name, err, linuxabi.EINVAL)
	}
	// Send only the parts of each range the device carries, each VNI once:
	// the kernel stops at the first VNI it does not have.
	var del []rtlink.VNIFilterEntry
	for _, s := range carried(vnis, have) {
		d := rtlink.VNIFilterEntry{Start: s.lo}
		if s.hi != s.lo {
			d.End = s.hi
		}
		del = append(del, d)
	}
	if len(del) == 0 {
		return nil
	}
	return vniFilterError("delete VNIs from", name, c.conn.DeleteVNIFilter(ctx, l.Index, del), linuxabi.EOPNOTSUPP)
}

// VNIs lists the VNIs of the VNI filtering device called name in ascending
// order, as the kernel reports them: consecutive VNIs with the same Group
// come as one range. Last is always set (equal to First for a single VNI).
// A vxlan link that is not in VNI filtering mode gives an error matching
// unix.EINVAL, which is the kernel's answer; a link of another kind
// ErrWrongKind.
func (c *Client) VNIs(ctx context.Context, name string) ([]VNIRange, error) {
	l, err := c.vxlanLink(ctx, "vnifilter", name)
	if err != nil {
		return nil, err
	}
	entries, err := c.conn.VNIFilter(ctx, l.Index, false)
	if err != nil {
		return nil, vniFilterError("list VNIs of", name, err, linuxabi.EINVAL)
	}
	out := make([]VNIRange, 0, len(entries))
	for _, e := range entries {
		out = append(out, VNIRange{First: e.Start, Last: lastOf(e), Group: e.Group})
	}
	return out, nil
}
