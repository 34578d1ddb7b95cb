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
	// CreateNetwork makes the network's links, or finds them made by an
	// earlier call for the same network. On error nothing it made remains.
	CreateNetwork(ctx context.Context, spec *NetworkSpec) error
	// DeleteNetwork removes what CreateNetwork made; links it did not make
	// (a reused bridge) are left in place. parentInUse tells that another
	// network still uses the network's parent interface.
	DeleteNetwork(ctx context.Context, spec *NetworkSpec, parentInUse bool) error
	// CreateEndpoint makes the endpoint's interfaces; on error nothing
	// it made remains.
	CreateEndpoint(ctx context.Context, spec *NetworkSpec, ep *Endpoint) error
	// DeleteEndpoint removes them; already gone is not an error.
	DeleteEndpoint(ctx context.Context, spec *NetworkSpec, ep *Endpoint) error
	// OwnedLinks lists the links this plugin made on the host, each with
	// the ID of the network it was made for.
	OwnedLinks(ctx context.Context) ([]OwnedLink, error)
	// DeleteOwnedLink deletes a link OwnedLinks reported.
	DeleteOwnedLink(ctx context.Context, l OwnedLink) error
	// AddPeer adds a head-end replication FDB entry to peer on the
	// network's vxlan link; one already there is not an error.
	AddPeer(ctx context.Context, spec *NetworkSpec, peer netip.Addr) error
	// RemovePeer removes it; an entry or a link already gone is not an
	// error.
	RemovePeer(ctx context.Context, spec *NetworkSpec, peer netip.Addr) error
}

// OwnedLink is a link the plugin made, found on the host.
type OwnedLink struct {
	Name      string
	Kind      string
	NetworkID string
}
