package fabric

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Interfaces is what [Resolve] reads of a host: which interfaces exist,
// their MTUs and their addresses. A linuxhost.Host is one.
type Interfaces interface {
	// LinkMTU returns the MTU of the named link, or an error matching
	// vxlan.ErrNotFound.
	LinkMTU(ctx context.Context, name string) (int, error)
	// LinkAddrs returns the addresses on the named link, or an error
	// matching vxlan.ErrNotFound.
	LinkAddrs(ctx context.Context, name string) ([]netip.Addr, error)
}

// ResolveConfig is what [Resolve] needs besides a network's options: what
// the front end (the Docker driver, the CNI plugin) knows of the network.
type ResolveConfig struct {
	// ID identifies the network. Its first 12 characters name the links
	// (vx_..., br_...) and it is part of their owner mark.
	ID string
	// Scope is ScopeLocal or ScopeGlobal: a network of one host, or one
	// spanning hosts. It decides HostGateway when the option does not, and
	// whether a parent network may have no parent.
	Scope string
	// DefaultVTEP is the VTEP device list of networks whose options name
	// none; empty means no device (the kernel routes by address).
	DefaultVTEP []string
	// Gateways are the network's gateways with their pools' prefix lengths.
	Gateways []netip.Prefix
	// MissingVTEPOK resolves a network whose VTEP device is not on this
	// host as one without a device, instead of failing: for taking a
	// network down, when only its links' names and marks matter.
	MissingVTEPOK bool
	// ParentDir is the only directory parent-file options are read from
	// (DefaultParentDir when empty).
	ParentDir string
	// ParentOwner is the uid that must own ParentDir and the files read
	// from it: 0, root, unless the caller runs as another user.
	ParentOwner uint32
	// Logger receives what resolving finds worth telling; nil discards it.
	Logger *slog.Logger
}

// Resolve builds and checks the spec of a network from its options (the
// option table's names, as [ParseOptions] takes them) and what rc says. It
// reads from the host, through ifs, only which interfaces exist, their
// MTUs and (for ControlPlane=evpn) the VTEP device's addresses: the VTEP
// device is the first existing one of VtepDev or rc.DefaultVTEP, the vxlan
// link's MTU follows from the device's, and the links are named from rc.ID
// unless the options name them.
//
// With ifs nil, Resolve checks a network for hosts it cannot see (a swarm
// manager's check before every node makes the network): the first VTEP
// device named is taken to exist with an MTU of 1500, and what only each
// host can tell, its parent interface and an EVPN network's local address,
// is left to that host's own Resolve.
func Resolve(ctx context.Context, ifs Interfaces, opts map[string]string, rc ResolveConfig) (*NetworkSpec, error) {
	spec, err := ParseOptions(opts)
	if err != nil {
		return nil, err
	}
	spec.ID = rc.ID
	spec.Gateways = rc.Gateways
	if rc.ParentDir == "" {
		rc.ParentDir = DefaultParentDir
	}
	r := &resolver{ifs: ifs, rc: rc, log: rc.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	switch spec.Kind {
	case KindParent:
		if ifs == nil {
			return spec, nil
		}
		// A macvlan link cannot reach its own lower device, so the gateway
		// is never put on the host for parent and macvlan networks.
		return spec, r.resolveParent(ctx, spec)
	case KindBridge:
		spec.HostGateway = rc.Scope == ScopeLocal
		if spec.hostGatewayOption != nil {
			spec.HostGateway = *spec.hostGatewayOption
		}
	}
	if err := nameLinks(spec); err != nil {
		return nil, err
	}
	v := &spec.VXLAN
	if v.Learning == nil {
		v.Learning = vxlan.Ptr(true)
	}
	v.Alias = OwnerMark(rc.ID)
	v.Up = true
	underlayMTU, err := r.resolveVTEP(ctx, spec)
	if rc.MissingVTEPOK && errors.Is(err, vxlan.ErrNotFound) {
		// Only names and marks are needed: the link is not made from this
		// spec, so it is not validated as one to make.
		setMTUs(spec, assumedUnderlayMTU)
		return spec, nil
	}
	if err != nil {
		return nil, err
	}
	if err := r.completeEVPN(ctx, spec); err != nil {
		return nil, err
	}
	if err := r.dropOwnPeers(ctx, spec); err != nil {
		return nil, err
	}
	setMTUs(spec, underlayMTU)
	return spec, optionErrorOf(v.Validate())
}

// resolver looks up on the host what a network's options name.
type resolver struct {
	ifs Interfaces // nil: no host to look at (see Resolve)
	rc  ResolveConfig
	log *slog.Logger
}

// dropOwnPeers takes this host's own VTEP addresses (those of the VTEP
// device, and Local) out of Peers, so that one Peers list naming every
// host of the segment serves every host: a flood entry to itself would
// send the host's broadcasts back to it, and its bridge would then learn
// its own containers behind the tunnel.
func (r *resolver) dropOwnPeers(ctx context.Context, spec *NetworkSpec) error {
	if r.ifs == nil || len(spec.Peers) == 0 || spec.VXLAN.Device == "" {
		return nil
	}
	own, err := r.ifs.LinkAddrs(ctx, spec.VXLAN.Device)
	if err != nil {
		return fmt.Errorf("reading the addresses of VTEP device %s: %w", spec.VXLAN.Device, err)
	}
	if spec.VXLAN.Local.IsValid() {
		own = append(own, spec.VXLAN.Local)
	}
	spec.Peers = slices.DeleteFunc(slices.Clone(spec.Peers), func(p netip.Addr) bool { return slices.Contains(own, p) })
	return nil
}

// nameLinks gives the vxlan link and the bridge their names, unless the
// options did.
func nameLinks(spec *NetworkSpec) error {
	if spec.VXLAN.Name == "" {
		spec.VXLAN.Name = VXLANLinkName(spec.ID)
	}
	if spec.Kind != KindBridge {
		return nil
	}
	if spec.Bridge.Name == "" {
		spec.Bridge.Name = BridgeLinkName(spec.ID)
	}
	// A bridge without a MAC of its own takes the lowest MAC of its ports,
	// and the kernel empties its neighbour table whenever that changes: on
	// container starts and stops. So the bridge gets a random locally
	// administered one, kept in the state.
	if spec.Bridge.HardwareAddr == nil {
		spec.Bridge.HardwareAddr = MACFor(netip.Prefix{})
	}
	if spec.VXLAN.Name == spec.Bridge.Name {
		return &OptionError{Option: "bridgeName", Value: spec.Bridge.Name, Problem: "same name as the vxlan interface", Accepted: "a name other than vxlanName"}
	}
	return nil
}

// assumedUnderlayMTU is the underlay MTU of a network without VTEP device.
const assumedUnderlayMTU = 1500

// resolveVTEP sets the vxlan link's device: the first of the network's
// VtepDev list, or else of the driver's default list, that exists on this
// host. It returns the device's MTU.
func (r *resolver) resolveVTEP(ctx context.Context, spec *NetworkSpec) (int, error) {
	candidates, isDefault := spec.VTEPCandidates, false
	if len(candidates) == 0 {
		candidates, isDefault = r.rc.DefaultVTEP, true
	}
	if len(candidates) == 0 {
		return assumedUnderlayMTU, nil
	}
	if r.ifs == nil {
		spec.VXLAN.Device = candidates[0]
		return assumedUnderlayMTU, nil
	}
	dev, mtu, err := r.firstLink(ctx, candidates)
	switch {
	case err != nil && isDefault:
		return 0, fmt.Errorf("the plugin's default VTEP device %s: %w; give the network the VtepDev option", strings.Join(candidates, ","), err)
	case err != nil:
		return 0, &OptionError{Option: "VtepDev", Value: strings.Join(candidates, ","), Problem: err.Error(), Accepted: lookupOption("VtepDev").Accepted, Err: err}
	}
	spec.VXLAN.Device = dev
	return mtu, nil
}

// setMTUs derives the vxlan link's MTU from the underlay's, unless given,
// and the containers' MTU: bridgeMTU, else the vxlan link's.
func setMTUs(spec *NetworkSpec, underlayMTU int) {
	overhead := vxlan.OverheadIPv4
	if spec.UnderlayIPv6() {
		overhead = vxlan.OverheadIPv6
	}
	if spec.VXLAN.MTU == 0 {
		spec.VXLAN.MTU = underlayMTU - overhead
	}
	spec.ContainerMTU = spec.VXLAN.MTU
	if spec.Bridge.MTU != 0 {
		spec.ContainerMTU = spec.Bridge.MTU
	}
}

// optionErrorOf reports a vxlan.Config refusal as a refusal of the option
// that set the field.
func optionErrorOf(err error) error {
	var ce *vxlan.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	opt, accepted := ce.Field, ce.Accepted
	if o := optionForField(ce.Field); o != nil {
		opt, accepted = o.Name, o.Accepted
	}
	problem := ce.Problem
	if problem == "" {
		problem = "not accepted by the vxlan link"
	}
	return &OptionError{Option: opt, Value: fmt.Sprint(ce.Value), Problem: problem, Accepted: accepted, Err: err}
}

// firstLink returns the first of names that exists on the host, with its
// MTU, or an error naming every candidate that matches vxlan.ErrNotFound.
func (r *resolver) firstLink(ctx context.Context, names []string) (string, int, error) {
	for _, n := range names {
		mtu, err := r.ifs.LinkMTU(ctx, n)
		if err == nil {
			return n, mtu, nil
		}
		if !errors.Is(err, vxlan.ErrNotFound) {
			return "", 0, err
		}
	}
	if len(names) == 1 {
		return "", 0, &notOnHostError{"no such interface on this host"}
	}
	return "", 0, &notOnHostError{fmt.Sprintf("none of %s exists on this host", strings.Join(names, ", "))}
}

// notOnHostError says that interfaces a network names do not exist here;
// it matches vxlan.ErrNotFound.
type notOnHostError struct{ msg string }

func (e *notOnHostError) Error() string { return e.msg }
func (e *notOnHostError) Unwrap() error { return vxlan.ErrNotFound }
