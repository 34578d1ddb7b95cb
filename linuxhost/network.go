package linuxhost

import (
	"context"
	"errors"
	"fmt"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/undo"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
	"golang.org/x/sys/unix"
)

// CreateNetwork makes the network's links: for a bridge-mode network the
// vxlan link and the bridge, the one enslaved to the other, the peers and,
// when asked, the gateway addresses, on the bridge or on an anycast
// gateway link over it (gateway.go); for a macvlan-mode network the vxlan
// link and its peers; for a parent network the parent, when it is an
// 802.1Q sub-interface to make or an isolated network's own link. Links
// made for this network by an earlier call are adopted. Last, a filtered
// network gets its VTEP filter (vtepfilter.go).
func (h *Host) CreateNetwork(ctx context.Context, spec *fabric.NetworkSpec) (err error) {
	var u undo.Steps
	defer u.OnError(ctx, &err)
	if err := h.createLinks(ctx, spec, &u); err != nil {
		return err
	}
	return h.installFilter(ctx, spec)
}

// createLinks makes the network's links, as CreateNetwork says, each with
// its undo step in u.
func (h *Host) createLinks(ctx context.Context, spec *fabric.NetworkSpec, u *undo.Steps) error {
	if spec.Kind == fabric.KindParent {
		return h.ensureParent(ctx, spec, u)
	}
	// Links of a deleted network may still hold the names, the VNI or
	// the UDP port (with other socket flags).
	if _, err := h.reap.waitFor(ctx, []string{spec.VXLAN.Name, spec.Bridge.Name}, &spec.VXLAN); err != nil {
		return err
	}
	vx, err := h.ensureVXLAN(ctx, spec, u)
	if err != nil || spec.Kind == fabric.KindMacvlan {
		return err
	}
	br, err := h.ensureBridge(ctx, spec, fabric.OwnerMark(spec.ID), u)
	if err != nil {
		return err
	}
	if err := h.enslave(ctx, vx, br); err != nil {
		return err
	}
	if err := h.ensureEVPNPort(ctx, spec, vx); err != nil {
		return err
	}
	if !br.Up {
		if err := h.conn.SetUp(ctx, br.Name); err != nil {
			return err
		}
	}
	switch {
	case spec.HostGateway && spec.AnycastGateway:
		return h.ensureAnycastGateway(ctx, spec, br, u)
	case spec.HostGateway:
		return h.addGateways(ctx, spec, br, u)
	}
	return nil
}

// enslave makes the vxlan link a port of the bridge, unless it is one.
func (h *Host) enslave(ctx context.Context, vx, br *rtlink.Link) error {
	if vx.MasterIndex == br.Index {
		return nil
	}
	if err := h.conn.SetMaster(ctx, vx.Name, br.Index); err != nil {
		return fmt.Errorf("enslave %s to bridge %s: %w", vx.Name, br.Name, err)
	}
	return nil
}

// addGateways puts the network's gateway addresses on its bridge.
func (h *Host) addGateways(ctx context.Context, spec *fabric.NetworkSpec, br *rtlink.Link, u *undo.Steps) error {
	for _, gw := range spec.Gateways {
		if err := h.addAddress(ctx, br, gw, u); err != nil {
			return fmt.Errorf("gateway %s on bridge %s: %w", gw, br.Name, err)
		}
	}
	return nil
}

// ensureParent makes the parent of a parent network when it is the
// plugin's to make: a missing 802.1Q sub-interface, or an isolated
// network's own link (a dummy, or where the kernel has no dummy, one end of
// a veth pair whose other end is up, so that it has carrier).
func (h *Host) ensureParent(ctx context.Context, spec *fabric.NetworkSpec, u *undo.Steps) error {
	p := spec.Parent
	l, err := h.conn.LinkByName(ctx, p.Name)
	if err == nil {
		if p.Isolated && l.Alias != fabric.OwnerMark(spec.ID) {
			return fmt.Errorf("isolated network's parent %s exists and was not made by this plugin for this network; it is left alone", p.Name)
		}
		return nil // the operator's parent, or ours from an earlier call
	}
	if !errors.Is(err, rtlink.ErrNotFound) {
		return err
	}
	switch {
	case p.Isolated:
		mark := fabric.OwnerMark(spec.ID)
		_, err := h.conn.CreateLink(ctx, &rtlink.Link{Name: p.Name, Alias: mark, Up: true, Data: &rtlink.Dummy{}})
		if errors.Is(err, rtlink.ErrNotSupported) {
			peer := isolatedPeerName(spec.ID)
			_, err = h.conn.CreateLink(ctx, &rtlink.Link{Name: p.Name, Alias: mark, Up: true, Data: &rtlink.Veth{PeerName: peer}})
			if err == nil {
				err = h.conn.SetUp(ctx, peer)
			}
		}
		if err != nil {
			_ = h.deleteMarked(context.WithoutCancel(ctx), p.Name, mark)
			return fmt.Errorf("isolated network's parent %s: %w", p.Name, err)
		}
		u.Add(func(ctx context.Context) { _ = h.deleteMarked(ctx, p.Name, mark) })
	case p.VLAN != nil:
		master, err := h.conn.LinkByName(ctx, p.VLAN.Master)
		if err != nil {
			return fmt.Errorf("parent %s: master %s: %w", p.Name, p.VLAN.Master, err)
		}
		_, err = h.conn.CreateLink(
			ctx,
			&rtlink.Link{Name: p.Name, ParentIndex: master.Index, Alias: vlanMark, Up: true, Data: &rtlink.VLAN{ID: p.VLAN.ID}},
		)
		if errors.Is(err, rtlink.ErrNotSupported) {
			return &fabric.OptionError{
				Option:  "parent",
				Value:   p.Name,
				Problem: "this kernel has no 802.1Q VLAN support (the 8021q module), so the sub-interface cannot be made: " + err.Error(),
				Err:     err,
			}
		}
		if err != nil {
			return fmt.Errorf("parent %s: %w", p.Name, err)
		}
		u.Add(func(ctx context.Context) { _ = h.deleteMarked(ctx, p.Name, vlanMark) })
	default:
		return fmt.Errorf("parent %s: %w", p.Name, rtlink.ErrNotFound)
	}
	return nil
}

// ensureVXLAN makes the network's vxlan link and its peers' FDB entries,
// or adopts the link an earlier call made.
func (h *Host) ensureVXLAN(ctx context.Context, spec *fabric.NetworkSpec, u *undo.Steps) (*rtlink.Link, error) {
	l, err := h.ensureVXLANLink(ctx, spec, u)
	if err != nil {
		return nil, err
	}
	for _, p := range spec.Peers {
		if err := h.vx.AddPeer(ctx, l.Name, p); err != nil {
			return nil, fmt.Errorf("peer %s: %w", p, err)
		}
	}
	return l, nil
}

func (h *Host) ensureVXLANLink(ctx context.Context, spec *fabric.NetworkSpec, u *undo.Steps) (*rtlink.Link, error) {
	cfg := spec.VXLAN
	l, err := h.conn.LinkByName(ctx, cfg.Name)
	switch {
	case errors.Is(err, rtlink.ErrNotFound):
		down := cfg
		down.Up = false
		if err := h.hurried(ctx, &cfg, func() error { return h.vx.Create(ctx, down) }); err != nil {
			return nil, h.explainCreate(ctx, spec, err)
		}
		u.Add(func(ctx context.Context) { _ = h.conn.DeleteLink(ctx, cfg.Name) })
		if err := h.hurried(ctx, &cfg, func() error { return h.upWithoutIPv6(ctx, cfg.Name) }); err != nil {
			return nil, explainUp(&cfg, err)
		}
		// Just made: no master yet, nothing to read back.
		return &rtlink.Link{Name: cfg.Name, Kind: linkKindVXLAN, Alias: cfg.Alias, Up: true}, nil
	case err != nil:
		return nil, err
	case l.Kind != linkKindVXLAN:
		return nil, &fabric.OptionError{
			Option:  "vxlanName",
			Value:   cfg.Name,
			Problem: fmt.Sprintf("%s exists and is %s, not a vxlan; it is left alone", cfg.Name, kindName(l.Kind)),
			Err:     rtlink.ErrWrongKind,
		}
	case l.Alias != cfg.Alias:
		return nil, &fabric.OptionError{
			Option:  "vxlanName",
			Value:   cfg.Name,
			Problem: fmt.Sprintf("a vxlan %s exists that this plugin did not create for this network; it is left alone", cfg.Name),
			Err:     rtlink.ErrExists,
		}
	}
	// Ours, from an earlier call: it must still match. (Ensure reads the
	// link once more; this happens only when a network is made again.)
	if _, err := h.vx.Ensure(ctx, cfg); err != nil {
		return nil, err
	}
	return l, nil
}

// hurried runs step, which makes or brings up the vxlan link cfg; when it
// fails because the VNI or the UDP port is taken (EEXIST, EADDRINUSE) and a
// released link still waiting for deletion holds it (released while the
// step ran, by a network deleted at the same time), it deletes that link
// now and runs step once more.
func (h *Host) hurried(ctx context.Context, cfg *vxlan.Config, step func() error) error {
	err := step()
	if !errors.Is(err, unix.EADDRINUSE) && !errors.Is(err, unix.EEXIST) {
		return err
	}
	if waited, werr := h.reap.waitFor(ctx, nil, cfg); werr != nil || !waited {
		return err
	}
	return step()
}

// explainUp says why a vxlan link could not come up when its UDP port is
// taken: by a socket with other flags, which no link being deleted holds.
func explainUp(cfg *vxlan.Config, err error) error {
	if !errors.Is(err, unix.EADDRINUSE) {
		return err
	}
	return fmt.Errorf("vxlan %s cannot open UDP port %d: another socket holds it, most often a vxlan link with other receive flags "+
		"(GBP, GPE, remote checksum, zero IPv6 checksums, metadata), which the kernel does not let share a port: %w",
		cfg.Name, vxlan.EffectivePort(cfg.Port), err)
}

// explainCreate reports a VNI the kernel refused because another vxlan
// link holds it as a refusal of VxlanId, naming that link and giving the
// kernel's reason.
func (h *Host) explainCreate(ctx context.Context, spec *fabric.NetworkSpec, err error) error {
	var conflict *vxlan.VNIConflictError
	if !errors.As(err, &conflict) {
		return err
	}
	other, owner := "another vxlan link", "not found in this namespace"
	if conflict.Other != "" {
		other, owner = "vxlan "+conflict.Other, "not created by this plugin"
		if l, lerr := h.conn.LinkByName(ctx, conflict.Other); lerr == nil && l.Alias != "" {
			owner = fmt.Sprintf("alias %q", l.Alias)
		}
	}
	return &fabric.OptionError{
		Option: "VxlanId",
		Value:  fmt.Sprint(spec.VXLAN.VNI),
		Problem: fmt.Sprintf(
			"VNI %d on UDP port %d is already used by %s (%s); the kernel said: %v",
			conflict.VNI,
			conflict.Port,
			other,
			owner,
			conflict.Err,
		),
		Err: err,
	}
}

func (h *Host) ensureBridge(ctx context.Context, spec *fabric.NetworkSpec, mark string, u *undo.Steps) (*rtlink.Link, error) {
	b := spec.Bridge
	l, err := h.conn.LinkByName(ctx, b.Name)
	switch {
	case errors.Is(err, rtlink.ErrNotFound):
		// Made down, so that it comes up (in CreateNetwork) without IPv6
		// when it needs none: no IPv6 gateway of the network on it.
		l, err = h.conn.CreateLink(
			ctx,
			&rtlink.Link{Name: b.Name, MTU: b.MTU, HardwareAddr: b.HardwareAddr, TxQueueLen: b.TxQueueLen, Alias: mark, Data: &rtlink.Bridge{}},
		)
		if err != nil {
			return nil, err
		}
		u.Add(func(ctx context.Context) { _ = h.conn.DeleteLink(ctx, b.Name) })
		if !spec.HasIPv6Gateway() {
			if err := h.conn.DisableIPv6(ctx, b.Name); err != nil {
				return nil, err
			}
		}
		l.Up = false
		return l, nil
	case err != nil:
		return nil, err
	case l.Kind != linkKindBridge:
		return nil, &fabric.OptionError{
			Option:  "bridgeName",
			Value:   b.Name,
			Problem: fmt.Sprintf("%s exists and is %s, not a bridge; it is left alone", b.Name, kindName(l.Kind)),
			Err:     rtlink.ErrWrongKind,
		}
	case l.Alias != mark && isOwnerMark(l.Alias):
		return nil, &fabric.OptionError{Option: "bridgeName", Value: b.Name, Problem: "the bridge belongs to another network of this plugin"}
	}
	return l, nil // ours from an earlier call, or the operator's to reuse
}

// DeleteNetwork removes what CreateNetwork made, each link only if this
// plugin made it: the network's VTEP filter, the gateway addresses (or the
// anycast gateway and host addresses) it put on an operator's bridge, the
// vxlan link and the bridge, an isolated network's parent, and an 802.1Q
// parent it made once no other network uses it.
func (h *Host) DeleteNetwork(ctx context.Context, spec *fabric.NetworkSpec, parentInUse bool) error {
	if err := h.removeFilter(ctx, spec); err != nil {
		return err
	}
	mark := fabric.OwnerMark(spec.ID)
	switch spec.Kind {
	case fabric.KindParent:
		if spec.Parent.Isolated {
			return h.deleteMarked(ctx, spec.Parent.Name, mark)
		}
		if !parentInUse {
			return h.deleteMarked(ctx, spec.Parent.Name, vlanMark)
		}
		return nil
	case fabric.KindMacvlan:
		return h.releaseMarked(ctx, spec.VXLAN.Name, mark, pendingVXLAN(&spec.VXLAN))
	}
	br, err := h.conn.LinkByName(ctx, spec.Bridge.Name)
	if err != nil && !errors.Is(err, rtlink.ErrNotFound) {
		return err
	}
	if br != nil && br.Alias != mark && spec.HostGateway && spec.AnycastGateway {
		// The operator's bridge stays: take back only what is ours.
		if err := h.removeAnycastGateway(ctx, spec, br); err != nil {
			return err
		}
	}
	if br != nil && br.Alias != mark && spec.HostGateway && !spec.AnycastGateway {
		// The operator's bridge stays: take back only our addresses.
		for _, gw := range spec.Gateways {
			if err := h.conn.DeleteAddress(ctx, br, gw); err != nil && !errors.Is(err, rtlink.ErrNotFound) {
				return err
			}
		}
	}
	if err := h.releaseMarked(ctx, spec.VXLAN.Name, mark, pendingVXLAN(&spec.VXLAN)); err != nil {
		return err
	}
	return h.releaseMarked(ctx, spec.Bridge.Name, mark, pendingLink{bridge: true})
}

// releaseMarked has the link called name deleted in the background if it
// carries mark. A link that is gone is not an error; one without the mark
// is left alone.
func (h *Host) releaseMarked(ctx context.Context, name, mark string, p pendingLink) error {
	if marked, err := h.isMarked(ctx, name, mark); !marked {
		return err
	}
	return h.reap.release(ctx, name, p)
}

// deleteMarked deletes the link called name if it carries mark. A link
// that is gone is not an error; one without the mark is left alone.
func (h *Host) deleteMarked(ctx context.Context, name, mark string) error {
	if marked, err := h.isMarked(ctx, name, mark); !marked {
		return err
	}
	if err := h.conn.DeleteLink(ctx, name); err != nil && !errors.Is(err, rtlink.ErrNotFound) {
		return err
	}
	return nil
}

// isMarked reports whether the link called name exists and carries mark.
func (h *Host) isMarked(ctx context.Context, name, mark string) (bool, error) {
	l, err := h.conn.LinkByName(ctx, name)
	if errors.Is(err, rtlink.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return l.Alias == mark, nil
}
