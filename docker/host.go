package docker

import (
	"context"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/vtepfilter"
)

// Host is what the driver needs from the machine: the interfaces
// fabric.Resolve reads, and the networks, endpoints and peers it makes.
// *linuxhost.Host implements it; unit tests fake it.
type Host interface {
	fabric.Interfaces
	// CreateNetwork makes the network's links, or finds them made by an
	// earlier call for the same network. On error nothing it made remains.
	CreateNetwork(ctx context.Context, spec *fabric.NetworkSpec) error
	// Reconcile brings the host in line with the networks a start knows
	// from its state, with one look at the host's links: it deletes the
	// links an earlier run released but did not delete, adopts the
	// networks whose links are there, makes the others again as
	// CreateNetwork does, and lists the links this plugin made for
	// networks not among specs.
	Reconcile(ctx context.Context, specs []*fabric.NetworkSpec) (*linuxhost.Reconciliation, error)
	// DeleteNetwork removes what CreateNetwork made; links it did not make
	// (a reused bridge) are left in place. parentInUse tells that another
	// network still uses the network's parent interface.
	DeleteNetwork(ctx context.Context, spec *fabric.NetworkSpec, parentInUse bool) error
	// CreateEndpoint makes the endpoint's interfaces, the container's end
	// in the host's namespace when in is nil (as the driver asks: dockerd
	// moves it); on error nothing it made remains.
	CreateEndpoint(ctx context.Context, spec *fabric.NetworkSpec, ep *fabric.Endpoint, in *linuxhost.ContainerNS) error
	// DeleteEndpoint removes them; already gone is not an error.
	DeleteEndpoint(ctx context.Context, spec *fabric.NetworkSpec, ep *fabric.Endpoint) error
	// DeleteOwnedLink deletes a link Reconcile reported as an orphan.
	DeleteOwnedLink(ctx context.Context, l linuxhost.OwnedLink) error
	// AddPeer adds a head-end replication FDB entry to peer on the
	// network's vxlan link; one already there is not an error.
	AddPeer(ctx context.Context, spec *fabric.NetworkSpec, peer netip.Addr) error
	// RemovePeer removes it; an entry or a link already gone is not an
	// error.
	RemovePeer(ctx context.Context, spec *fabric.NetworkSpec, peer netip.Addr) error
	// CheckNetwork compares the network's links, its peers' FDB entries
	// and its endpoints' links with what spec and eps ask, changing
	// nothing, and names every difference.
	CheckNetwork(ctx context.Context, spec *fabric.NetworkSpec, eps []*fabric.Endpoint) linuxhost.NetworkStatus
	// AddHostAddress puts one of this host's own addresses on the
	// segment on the bridge of a network with an anycast gateway.
	AddHostAddress(ctx context.Context, spec *fabric.NetworkSpec, p netip.Prefix) error
	// OpenSegment opens the network's segment for the IPAM driver's
	// probes and guard (nil: the host does not probe).
	OpenSegment(spec *fabric.NetworkSpec, g linuxhost.Guard) (*linuxhost.Segment, error)
	// VTEPFilterDropped reads what the network's VTEP filter dropped, the
	// number status shows; a network not filtered is an error matching
	// vtepfilter.ErrNotFound.
	VTEPFilterDropped(ctx context.Context, spec *fabric.NetworkSpec) (vtepfilter.Counter, error)
}

var _ Host = (*linuxhost.Host)(nil)
