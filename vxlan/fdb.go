package vxlan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// zeroMAC is the FDB key of the default destination: broadcast, unknown
// unicast and multicast frames go to every remote listed under it.
var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// FDBEntry is an entry of a vxlan link's own forwarding database. Its
// state and flags are the kernel's, decoded bit by bit: an entry can be
// both Permanent and ExternLearned, as an EVPN daemon's are.
type FDBEntry struct {
	// MAC is the destination MAC; 00:00:00:00:00:00 is the default entry
	// used for head-end replication to remote VTEPs.
	MAC net.HardwareAddr
	// Remote is the VTEP to send to.
	Remote netip.Addr
	// VNI, when not 0, overrides the link's VNI for this entry (NDA_VNI).
	VNI uint32
	// Port, when not 0, overrides the link's UDP port (NDA_PORT).
	Port uint16
	// ViaIndex is the index of the underlay device the entry sends through
	// (NDA_IFINDEX, iproute2's "via"), 0 for the link's own.
	ViaIndex int
	// Via is the name of that device, "" when ViaIndex is 0 or the device
	// is gone.
	Via string
	// Permanent is NUD_PERMANENT: added by hand (iproute2 "permanent", and
	// every entry this package adds); it never ages.
	Permanent bool
	// Static is NUD_NOARP without NUD_PERMANENT: iproute2's "static".
	Static bool
	// Learnt is an entry the kernel learnt from received traffic, or one
	// added as "dynamic": NUD_REACHABLE or NUD_STALE, neither permanent nor
	// static, and not ExternLearned. It ages out.
	Learnt bool
	// ExternLearned is NTF_EXT_LEARNED: installed by a control plane (an
	// EVPN daemon such as FRR), not learnt from traffic.
	ExternLearned bool
	// State is the raw NUD_* state (rtlink.NUDPermanent, ...).
	State uint16
	// Flags is the raw NTF_* flags (rtlink.NTFSelf, ...).
	Flags uint8
}

// MarshalJSON encodes the entry for people: the MAC and remote as text,
// its Kind, and the via device.
func (e FDBEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		MAC      string     `json:"mac"`
		Remote   netip.Addr `json:"remote,omitzero"`
		Kind     FDBKind    `json:"kind"`
		VNI      uint32     `json:"vni,omitempty"`
		Port     uint16     `json:"port,omitempty"`
		Via      string     `json:"via,omitempty"`
		ViaIndex int        `json:"via_index,omitempty"`
		Extern   bool       `json:"extern_learn,omitempty"`
		State    uint16     `json:"state"`
		Flags    uint8      `json:"flags"`
	}{e.MAC.String(), e.Remote, e.Kind(), e.VNI, e.Port, e.Via, e.ViaIndex, e.ExternLearned, e.State, e.Flags})
}

// FDBKind is what kind of FDB entry an FDBEntry is, named as iproute2's
// bridge command prints it.
type FDBKind string

// FDB entry kinds, as returned by FDBEntry.Kind.
const (
	FDBPeer          FDBKind = "peer"         // all-zero MAC: head-end replication
	FDBExternLearned FDBKind = "extern_learn" // installed by a control plane
	FDBPermanent     FDBKind = "permanent"    // added by hand, never ages
	FDBStatic        FDBKind = "static"       // NUD_NOARP: iproute2's "static"
	FDBLearnt        FDBKind = "learnt"       // learnt from traffic (or "dynamic"), ages out
	FDBOther         FDBKind = "other"        // a state this package does not name (incomplete, failed, ...)
)

// Kind names the entry's kind, in this order of precedence: FDBPeer,
// FDBExternLearned, FDBPermanent, FDBStatic, FDBLearnt, FDBOther.
func (e FDBEntry) Kind() FDBKind {
	switch {
	case e.IsPeer():
		return FDBPeer
	case e.ExternLearned:
		return FDBExternLearned
	case e.Permanent:
		return FDBPermanent
	case e.Static:
		return FDBStatic
	case e.Learnt:
		return FDBLearnt
	}
	return FDBOther
}

// fdbEntry decodes a neighbour entry of a vxlan FDB; names maps indexes to
// names for Via.
func fdbEntry(n *rtlink.Neigh, names map[int]string) FDBEntry {
	e := FDBEntry{
		MAC: n.MAC, Remote: n.IP, VNI: n.VNI, Port: n.Port, ViaIndex: n.IfIndex, Via: names[n.IfIndex],
		State: n.State, Flags: n.Flags,
		Permanent:     n.State&rtlink.NUDPermanent != 0,
		ExternLearned: n.Flags&rtlink.NTFExtLearned != 0,
	}
	e.Static = !e.Permanent && n.State&rtlink.NUDNoARP != 0
	e.Learnt = !e.Permanent && !e.Static && !e.ExternLearned && n.State&(rtlink.NUDReachable|rtlink.NUDStale) != 0
	return e
}

// IsPeer reports whether e is a head-end replication entry (all-zero MAC).
func (e FDBEntry) IsPeer() bool { return bytes.Equal(e.MAC, zeroMAC) }

// FDBOption sets a per-entry override for AddPeer, RemovePeer and
// AddStaticMAC.
type FDBOption func(*fdbOptions)

type fdbOptions struct {
	vni  uint32
	port uint16
	via  string
}

// WithVNI sends the entry's traffic with VNI vni instead of the link's
// (NDA_VNI; for a CollectMetadata link, the VNI to send with).
func WithVNI(vni uint32) FDBOption { return func(o *fdbOptions) { o.vni = vni } }

// WithPort sends the entry's traffic to UDP port port instead of the link's
// (NDA_PORT).
func WithPort(port uint16) FDBOption { return func(o *fdbOptions) { o.port = port } }

// WithVia sends the entry's traffic out of the underlay device named dev
// (NDA_IFINDEX, iproute2's "via").
func WithVia(dev string) FDBOption { return func(o *fdbOptions) { o.via = dev } }

func (c *Client) fdbNeigh(ctx context.Context, name string, mac net.HardwareAddr, remote netip.Addr, opts []FDBOption) (*rtlink.Neigh, error) {
	var o fdbOptions
	for _, fn := range opts {
		fn(&o)
	}
	if o.vni > MaxVNI {
		return nil, &ConfigError{Field: "WithVNI", Value: o.vni, Accepted: "0..16777215"}
	}
	l, err := c.conn.LinkByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := checkKind("fdb", l); err != nil {
		return nil, err
	}
	n := &rtlink.Neigh{
		Family:    rtlink.FamilyBridge,
		LinkIndex: l.Index,
		State:     rtlink.NUDPermanent | rtlink.NUDNoARP,
		Flags:     rtlink.NTFSelf,
		MAC:       mac,
		IP:        remote,
		VNI:       o.vni,
		Port:      o.port,
	}
	if o.via != "" {
		dev, err := c.conn.LinkByName(ctx, o.via)
		if err != nil {
			return nil, fmt.Errorf("vxlan: via device %q of %s: %w", o.via, name, err)
		}
		n.IfIndex = dev.Index
	}
	return n, nil
}

func checkRemote(remote netip.Addr) error {
	if !remote.IsValid() || remote.IsUnspecified() || remote.IsMulticast() || remote.Is4In6() {
		return &ConfigError{Field: "remote", Value: remote, Accepted: "a unicast IPv4 or IPv6 address"}
	}
	return nil
}

// AddPeer adds remote to the link's default FDB entry, so broadcast,
// unknown-unicast and multicast frames are replicated to it (head-end
// replication: no multicast needed in the underlay). Adding a peer that is
// already there changes nothing. Options give the entry its own VNI, port
// or underlay device: AddPeer(ctx, "vx0", ip, vxlan.WithVNI(42)).
func (c *Client) AddPeer(ctx context.Context, name string, remote netip.Addr, opts ...FDBOption) error {
	if err := checkRemote(remote); err != nil {
		return err
	}
	n, err := c.fdbNeigh(ctx, name, zeroMAC, remote, opts)
	if err != nil {
		return err
	}
	return explainFamily(c.conn.AppendNeigh(ctx, n), name, remote)
}

// explainFamily turns the kernel's EAFNOSUPPORT for an FDB remote into
// words: a vxlan link's remotes are all of its underlay's family.
func explainFamily(err error, name string, remote netip.Addr) error {
	if err == nil || !errors.Is(err, linuxabi.EAFNOSUPPORT) {
		return err
	}
	fam, other := "IPv4", "IPv6"
	if remote.Is6() {
		fam, other = "IPv6", "IPv4"
	}
	return fmt.Errorf("vxlan: remote %s is %s but %s has an %s underlay (set Group or Local to choose it): %w", remote, fam, name, other, err)
}

// RemovePeer removes remote from the link's default FDB entry. A peer that
// is not there is not an error. A peer added with options is removed with
// the same options: the kernel matches VNI, port and via device too.
func (c *Client) RemovePeer(ctx context.Context, name string, remote netip.Addr, opts ...FDBOption) error {
	if err := checkRemote(remote); err != nil {
		return err
	}
	n, err := c.fdbNeigh(ctx, name, zeroMAC, remote, opts)
	if err != nil {
		return err
	}
	return ignoreNotFound(c.conn.DeleteNeigh(ctx, n))
}

// Peers lists the remotes of the link's default FDB entry.
func (c *Client) Peers(ctx context.Context, name string) ([]netip.Addr, error) {
	entries, err := c.FDB(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, e := range entries {
		if e.IsPeer() {
			out = append(out, e.Remote)
		}
	}
	return out, nil
}

// AddStaticMAC points mac at the VTEP remote with a permanent entry,
// replacing any entry mac had, so a MAC that moved is re-pointed. Options
// are those of AddPeer. An entry a control plane installed (ExternLearned,
// from an EVPN daemon) is replaced too, and the daemon no longer sees it as
// its own: leave the MACs of such a link to the daemon.
func (c *Client) AddStaticMAC(ctx context.Context, name string, mac net.HardwareAddr, remote netip.Addr, opts ...FDBOption) error {
	if !ValidMAC(mac) {
		return &ConfigError{Field: "mac", Value: mac, Accepted: "a 6-byte unicast MAC address other than 00:00:00:00:00:00"}
	}
	if err := checkRemote(remote); err != nil {
		return err
	}
	n, err := c.fdbNeigh(ctx, name, mac, remote, opts)
	if err != nil {
		return err
	}
	return explainFamily(c.conn.ReplaceNeigh(ctx, n), name, remote)
}

// RemoveStaticMAC removes every entry of mac, extern_learn ones included.
// A MAC without entries is not an error.
func (c *Client) RemoveStaticMAC(ctx context.Context, name string, mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return &ConfigError{Field: "mac", Value: mac, Accepted: "a 6-byte MAC address"}
	}
	n, err := c.fdbNeigh(ctx, name, mac, netip.Addr{}, nil)
	if err != nil {
		return err
	}
	return ignoreNotFound(c.conn.DeleteNeigh(ctx, n))
}

// FDB lists the link's own forwarding database: peers, static MACs, learnt
// and externally learnt entries, each with its kind (see FDBEntry.Kind).
func (c *Client) FDB(ctx context.Context, name string) ([]FDBEntry, error) {
	l, err := c.conn.LinkByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := checkKind("fdb", l); err != nil {
		return nil, err
	}
	neighs, err := c.conn.Neighs(ctx, rtlink.FamilyBridge, l.Index)
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	for _, n := range neighs {
		if _, seen := names[n.IfIndex]; n.IfIndex != 0 && !seen {
			names[n.IfIndex] = ""
			if dev, err := c.conn.LinkByIndex(ctx, n.IfIndex); err == nil {
				names[n.IfIndex] = dev.Name
			} else if !errors.Is(err, rtlink.ErrNotFound) {
				return nil, err
			}
		}
	}
	out := make([]FDBEntry, 0, len(neighs))
	for _, n := range neighs {
		if n.Flags&rtlink.NTFSelf == 0 {
			continue // the bridge's entry for this port, not the vxlan's own
		}
		out = append(out, fdbEntry(n, names))
	}
	return out, nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, rtlink.ErrNotFound) {
		return nil
	}
	return err
}

// String returns the entry as iproute2's bridge command prints it:
// "MAC dst IP [port P] [vni N] [via DEV] KIND".
func (e FDBEntry) String() string {
	s := fmt.Sprintf("%s dst %s", e.MAC, e.Remote)
	if e.Port != 0 {
		s += fmt.Sprintf(" port %d", e.Port)
	}
	if e.VNI != 0 {
		s += fmt.Sprintf(" vni %d", e.VNI)
	}
	switch {
	case e.Via != "":
		s += " via " + e.Via
	case e.ViaIndex != 0:
		s += fmt.Sprintf(" via index %d", e.ViaIndex)
	}
	return s + " " + string(e.Kind())
}
