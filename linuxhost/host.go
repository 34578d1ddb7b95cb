package linuxhost

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Host makes the networks of package fabric on a Linux machine, in the
// network namespace of its rtlink connection, with packages vxlan and
// rtlink. It is safe for concurrent use; calls on one network must not
// overlap (the front ends serialise them).
//
// It deletes only links that carry an owner mark (fabric.OwnerMark) in
// their alias, and never takes over a link it did not create, except a
// bridge named by the bridgeName option, which it uses and leaves in place.
//
// The links of deleted endpoints and vxlan networks are deleted in the
// background, many in one request (see reaper.go): DeleteEndpoint and
// DeleteNetwork return without waiting for the kernel, and a CreateNetwork
// that needs a name, or a VNI and port, of a link still being deleted
// waits for that deletion. Drain waits for all of them.
type Host struct {
	conn   *rtlink.Conn
	vx     *vxlan.Client
	reap   *reaper
	filter *hostFilter // nil without WithVTEPFilter
}

// Option configures New.
type Option func(*Host)

// WithLogger sets where the host logs what its background deletion and
// its VTEP filter do; without it, that is discarded.
func WithLogger(log *slog.Logger) Option {
	return func(h *Host) { h.reap.log = log }
}

// WithDeletionObserver has observe told of each deletion request of the
// background deletion: how many released links it deleted and how long the
// kernel took. It is called on the deleting goroutine, and must not block.
func WithDeletionObserver(observe func(links int, took time.Duration)) Option {
	return func(h *Host) { h.reap.observe = observe }
}

// Released counts the links DeleteEndpoint and DeleteNetwork let go of
// that the background deletion has not deleted yet.
func (h *Host) Released() int { return h.reap.released() }

// New returns a Host working through conn, which the caller keeps open for
// as long as the Host is used.
func New(conn *rtlink.Conn, opts ...Option) *Host {
	h := &Host{conn: conn, vx: vxlan.New(conn), reap: newReaper(conn)}
	for _, o := range opts {
		o(h)
	}
	if h.filter != nil {
		h.filter.log, h.filter.conn = h.reap.log, conn
	}
	return h
}

// Drain returns once every link released by DeleteEndpoint or
// DeleteNetwork is deleted, or when ctx is done.
func (h *Host) Drain(ctx context.Context) error { return h.reap.drain(ctx) }

// LinkMTU returns the MTU of the named link, or an error matching
// vxlan.ErrNotFound.
func (h *Host) LinkMTU(ctx context.Context, name string) (int, error) {
	l, err := h.conn.LinkByName(ctx, name)
	if err != nil {
		return 0, err
	}
	return l.MTU, nil
}

// LinkAddrs returns the addresses on the named link, in the kernel's
// order, or an error matching vxlan.ErrNotFound.
func (h *Host) LinkAddrs(ctx context.Context, name string) ([]netip.Addr, error) {
	as, err := h.addresses(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, len(as))
	for i, a := range as {
		out[i] = a.Prefix.Addr()
	}
	return out, nil
}

// addresses reads the addresses on the named link, with their prefixes.
func (h *Host) addresses(ctx context.Context, name string) ([]rtlink.Address, error) {
	l, err := h.conn.LinkByName(ctx, name)
	if err != nil {
		return nil, err
	}
	return h.conn.Addresses(ctx, l)
}

// vlanMark is the alias of the 802.1Q sub-interfaces made as parents;
// they may serve several networks, so the mark names none.
const vlanMark = "docker-vxlan-plugin vlan"

// isOwnerMark reports whether alias is the owner mark of some network.
func isOwnerMark(alias string) bool {
	_, ok := fabric.NetworkOfMark(alias)
	return ok
}

// isolatedPeerName names the other end of an isolated parent made as a
// veth pair (where the kernel has no dummy links).
func isolatedPeerName(networkID string) string { return "pb_" + fabric.ShortID(networkID) }

// Link kinds, as rtlink reports them in Link.Kind.
var (
	linkKindVXLAN   = (&rtlink.VXLAN{}).Kind()
	linkKindBridge  = (&rtlink.Bridge{}).Kind()
	linkKindVeth    = (&rtlink.Veth{}).Kind()
	linkKindMacvlan = (&rtlink.Macvlan{}).Kind()
)

// kindName words a link kind with its article: "a veth", or "a device
// without a kind (physical or loopback)".
func kindName(kind string) string { return "a " + rtlink.KindName(kind) }
