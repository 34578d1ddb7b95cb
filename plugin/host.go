package plugin

import (
	"context"
	"net/netip"
)

// Host is what the driver needs from the machine. LinuxHost implements it
// with packages vxlan and rtlink; unit tests fake it.
type Host interface {
	// LinkMTU returns the MTU of the named link, or an error matching
	// vxlan.ErrNotFound.
	LinkMTU(ctx context.Context, name string) (int, error)
	// LinkAddrs returns the addresses on the named link, or an error
	// matching vxlan.ErrNotFound.
	LinkAddrs(ctx context.Context, name string) ([]netip.Addr, error)
	// CreateNetwork makes the network's links, or finds them made by an
	// earlier call for the same network. On error nothing it made remains.
	CreateNetwork(ctx context.Context, spec *NetworkSpec) error
	// Reconcile brings the host in line with the networks a start knows
	// from its state, with one look at the host's links: it deletes the
	// links an earlier run released but did not delete, adopts the
	// networks whose links are there, makes the others again as
	// CreateNetwork does, and lists the links this plugin made for
	// networks not among specs.
	Reconcile(ctx context.Context, specs []*NetworkSpec) (*Reconciliation, error)
	// DeleteNetwork removes what CreateNetwork made; links it did not make
	// (a reused bridge) are left in place. parentInUse tells that another
	// network still uses the network's parent interface.
	DeleteNetwork(ctx context.Context, spec *NetworkSpec, parentInUse bool) error
	// CreateEndpoint makes the endpoint's interfaces; on error nothing
	// it made remains.
	CreateEndpoint(ctx context.Context, spec *NetworkSpec, ep *Endpoint) error
	// DeleteEndpoint removes them; already gone is not an error.
	DeleteEndpoint(ctx context.Context, spec *NetworkSpec, ep *Endpoint) error
	// DeleteOwnedLink deletes a link Reconcile reported as an orphan.
	DeleteOwnedLink(ctx context.Context, l OwnedLink) error
	// AddPeer adds a head-end replication FDB entry to peer on the
	// network's vxlan link; one already there is not an error.
	AddPeer(ctx context.Context, spec *NetworkSpec, peer netip.Addr) error
	// RemovePeer removes it; an entry or a link already gone is not an
	// error.
	RemovePeer(ctx context.Context, spec *NetworkSpec, peer netip.Addr) error
	// CheckNetwork compares the network's links, its peers' FDB entries
	// and its endpoints' links with what spec and eps ask, changing
	// nothing, and names every difference.
	CheckNetwork(ctx context.Context, spec *NetworkSpec, eps []*Endpoint) NetworkStatus
}

// Reconciliation is what Reconcile did and found.
type Reconciliation struct {
	// Reaped counts the released links it deleted.
	Reaped int
	// Failed holds, for each network given, why its links could not be
	// made again, or nil.
	Failed []error
	// Orphans are the links this plugin made for networks not given.
	Orphans []OwnedLink
}

// OwnedLink is a link the plugin made, found on the host.
type OwnedLink struct {
	Name      string
	Kind      string
	NetworkID string
}
