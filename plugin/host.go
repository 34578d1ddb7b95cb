package plugin

import "context"

// Host is what the driver needs from the machine. LinuxHost implements it
// with packages vxlan and rtlink; unit tests fake it.
type Host interface {
	// LinkMTU returns the MTU of the named link, or an error matching
	// vxlan.ErrNotFound.
	LinkMTU(ctx context.Context, name string) (int, error)
	// CreateNetwork makes the network's links, or finds them made by an
	// earlier call for the same network. On error nothing it made remains.
	CreateNetwork(ctx context.Context, spec *NetworkSpec) error
	// RestoreNetworks makes sure the links of networks known from the
	// state exist, as at a start: a network whose links are there is
	// adopted as it is, one with a link missing is made again as
	// CreateNetwork does. It returns an error per network, nil for those
	// that are there.
	RestoreNetworks(ctx context.Context, specs []*NetworkSpec) []error
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
	// ReapReleased deletes the links an earlier run of the plugin released
	// (deleted endpoints and networks) but did not delete before it
	// stopped, and returns how many there were.
	ReapReleased(ctx context.Context) (int, error)
	// CheckNetwork compares the network's links, its peers' FDB entries
	// and its endpoints' links with what spec and eps ask, changing
	// nothing, and names every difference.
	CheckNetwork(ctx context.Context, spec *NetworkSpec, eps []*Endpoint) NetworkStatus
}

// OwnedLink is a link the plugin made, found on the host.
type OwnedLink struct {
	Name      string
	Kind      string
	NetworkID string
}
