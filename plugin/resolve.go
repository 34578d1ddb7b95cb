package plugin

import (
	"context"
	"errors"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

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
}

// Resolve builds and checks the spec of a network from its options (the
// option table's names, as [ParseOptions] takes them) and what rc says. It
// reads from the host only which interfaces exist and their MTUs: the
// VTEP device is the first existing one of VtepDev or rc.DefaultVTEP, the
// vxlan link's MTU follows from the device's, and the links are named from
// rc.ID unless the options name them.
func Resolve(ctx context.Context, host Host, opts map[string]string, rc ResolveConfig) (*NetworkSpec, error) {
	spec, err := ParseOptions(opts)
	if err != nil {
		return nil, err
	}
	spec.ID = rc.ID
	spec.Gateways = rc.Gateways
	r := &resolver{host: host, rc: rc}
	switch spec.Kind {
	case KindParent:
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
	v.Alias = ownerMark(rc.ID)
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
	setMTUs(spec, underlayMTU)
	return spec, optionErrorOf(v.Validate())
}

// resolver looks up on the host what a network's options name.
type resolver struct {
	host Host
	rc   ResolveConfig
}
