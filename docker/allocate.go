package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker/internal/store"
	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

// VNIRange is the range a swarm manager allocates the VNIs of global
// networks from, Low and High included.
type VNIRange struct {
	Low, High uint32
}

// DefaultVNIRange is the allocation range when the driver's Config names
// none. Docker's builtin overlay driver allocates its VNIs upward from 4096
// (swarm's ingress network holds one of them on every node), and the kernel
// refuses a second vxlan link with the same VNI and UDP port in a namespace,
// so the default stays below 4096.
var DefaultVNIRange = VNIRange{Low: 1000, High: 3999}

// maxVNI is the largest VNI: VNIs are 24 bits.
const maxVNI = 1<<24 - 1

// ParseVNIRange reads a range as LOW-HIGH, decimal ("1000-3999").
func ParseVNIRange(s string) (VNIRange, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	r := VNIRange{}
	if ok {
		l, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 32)
		h, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 32)
		r = VNIRange{Low: uint32(l), High: uint32(h)}
		ok = err1 == nil && err2 == nil
	}
	if !ok {
		return VNIRange{}, fmt.Errorf("VNI range %q: not LOW-HIGH; accepted: two decimal VNIs, 1..%d, LOW <= HIGH (e.g. %s)", s, maxVNI, DefaultVNIRange)
	}
	return r, r.check()
}

func (r VNIRange) check() error {
	if r.Low < 1 || r.High > maxVNI || r.Low > r.High {
		return fmt.Errorf("VNI range %s: accepted: 1..%d, LOW <= HIGH", r, maxVNI)
	}
	return nil
}

// String writes the range as ParseVNIRange reads it.
func (r VNIRange) String() string { return fmt.Sprintf("%d-%d", r.Low, r.High) }

// contains reports whether vni is in the range.
func (r VNIRange) contains(vni uint32) bool { return vni >= r.Low && vni <= r.High }

// vniRecord is a VNI allocation as the store keeps it (bucket store.VNIs,
// keyed by network ID).
type vniRecord struct {
	VNI uint32 `json:"vni"`
}

// putVNI records the VNI of a global network.
func (s *stateStore) putVNI(networkID string, vni uint32) error {
	return s.update(func(tx *store.Tx) error { return tx.Put(store.VNIs, networkID, vniRecord{VNI: vni}) })
}

// deleteVNI removes a global network's VNI record.
func (s *stateStore) deleteVNI(networkID string) error {
	return s.update(func(tx *store.Tx) error { return tx.Delete(store.VNIs, networkID) })
}

// AllocateNetwork is the swarm leader's call for a new global network (and,
// after a leader change, for every existing one again, with the options it
// answered before). It checks the options as CreateNetwork does, except
// what only a node can check (which interfaces exist there), and returns
// them: they are all the nodes' CreateNetwork will get. A vxlan network
// without VxlanId gets the next free VNI of the driver's range added as
// VxlanId; a given VxlanId (the user's, or the one allocated before) is
// recorded, and refused if another network of this driver holds it. Docker
// has already told the user "created" when this runs, so a refusal reaches
// only the manager's dockerd log; it names the option and what is accepted.
func (d *Driver) AllocateNetwork(ctx context.Context, req *AllocateNetworkRequest) (map[string]string, error) {
	if d.cfg.Scope != fabric.ScopeGlobal {
		return nil, d.errWrongScope("AllocateNetwork")
	}
	if req.NetworkID == "" {
		return nil, errors.New("no NetworkID")
	}
	out := maps.Clone(req.Options)
	if out == nil {
		out = map[string]string{}
	}
	vniKey, given := fabric.GivenKey(out, "VxlanId")
	_, parent := fabric.GivenKey(out, "parent")
	_, parentFile := fabric.GivenKey(out, "parent-file")
	allocate := !given && !parent && !parentFile
	checked := out
	if allocate {
		// Checked with a VNI of the range, so that the vxlan options are
		// taken for what they are; the VNI itself is chosen once they pass.
		checked = maps.Clone(out)
		checked["VxlanId"] = strconv.FormatUint(uint64(d.vniRange.Low), 10)
	}
	// The node's own resolution, with no host to look at: each node checks
	// what only it can see when it makes the network.
	spec, err := fabric.Resolve(ctx, nil, checked, fabric.ResolveConfig{ID: req.NetworkID, Scope: d.cfg.Scope, DefaultVTEP: d.vtepDevices})
	if err != nil {
		return nil, err
	}
	if spec.Kind == fabric.KindParent {
		return out, nil
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	vni := spec.VXLAN.VNI
	if allocate {
		if vni, err = d.nextVNI(req.NetworkID); err != nil {
			return nil, err
		}
		out["VxlanId"] = strconv.FormatUint(uint64(vni), 10)
	} else if other := d.vniHolder(vni, req.NetworkID); other != "" {
		return nil, &fabric.OptionError{Option: vniKey, Value: out[vniKey],
			Problem:  fmt.Sprintf("VNI %d is already held by swarm network %s of this driver", vni, fabric.ShortID(other)),
			Accepted: fmt.Sprintf("a VNI no other swarm network of this driver holds, or no VxlanId to have one allocated from %s", d.vniRange)}
	}
	if old, ok := d.vnis[req.NetworkID]; !ok || old != vni {
		if err := d.persist(func(s *stateStore) error { return s.putVNI(req.NetworkID, vni) }); err != nil {
			return nil, err
		}
		d.vnis[req.NetworkID] = vni
	}
	d.log.Info("network allocated", "network", fabric.ShortID(req.NetworkID), "vni", vni, "allocated", allocate)
	return out, nil
}

// FreeNetwork is the swarm leader's call for a global network removed: its
// VNI is free again. An unknown network is not an error.
func (d *Driver) FreeNetwork(_ context.Context, id string) error {
	if d.cfg.Scope != fabric.ScopeGlobal {
		return d.errWrongScope("FreeNetwork")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.persist(func(s *stateStore) error { return s.deleteVNI(id) }); err != nil {
		return err
	}
	if vni, ok := d.vnis[id]; ok {
		delete(d.vnis, id)
		d.log.Info("network freed", "network", fabric.ShortID(id), "vni", vni)
	}
	return nil
}

// errWrongScope answers a swarm manager's call to a local-scope driver.
func (d *Driver) errWrongScope(call string) error {
	return fmt.Errorf("%s is a swarm manager's call for a global-scope driver, and this plugin reports scope %s", call, d.cfg.Scope)
}

// vniHolder returns the network other than id that holds vni, or "".
// d.mu is held.
func (d *Driver) vniHolder(vni uint32, id string) string {
	for other, v := range d.vnis {
		if v == vni && other != id {
			return other
		}
	}
	return ""
}

// nextVNI returns the VNI of network id: the one it holds already, or the
// first free one of the range after the last allocated, wrapping around
// (as the overlay driver does, so that a VNI just freed, whose links nodes
// may still be deleting, is not given out again at once). d.mu is held.
func (d *Driver) nextVNI(id string) (uint32, error) {
	if vni, ok := d.vnis[id]; ok {
		return vni, nil
	}
	used := make(map[uint32]bool, len(d.vnis))
	for _, v := range d.vnis {
		used[v] = true
	}
	r := d.vniRange
	size := r.High - r.Low + 1
	start := r.Low
	if r.contains(d.lastVNI) {
		start = d.lastVNI + 1
	}
	for i := uint32(0); i < size; i++ {
		vni := r.Low + (start-r.Low+i)%size
		if !used[vni] {
			d.lastVNI = vni
			return vni, nil
		}
	}
	return 0, &fabric.OptionError{Option: "VxlanId", Problem: fmt.Sprintf("missing, and every VNI of the plugin's range %s is held by a swarm network", r),
		Accepted: "a VxlanId outside the range that no network holds, or a wider range (the plugin's VNI range setting, VNI_RANGE)"}
}

// restoreVNIs takes the allocations of the store after a restart; the
// allocation goes on after the highest VNI of the range held. d.mu is held.
func (d *Driver) restoreVNIs(vnis map[string]uint32) {
	for id, vni := range vnis {
		d.vnis[id] = vni
		if d.vniRange.contains(vni) && vni > d.lastVNI {
			d.lastVNI = vni
		}
	}
}
