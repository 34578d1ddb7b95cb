package vxlan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// zeroMAC is the FDB key of the default destination: broadcast, unknown
// unicast and multicast frames go to every remote listed under it.
var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// FDBEntry is an entry of a vxlan link's own forwarding database.
type FDBEntry struct {
	// MAC is the destination MAC; 00:00:00:00:00:00 is the default entry
	// used for head-end replication to remote VTEPs.
	MAC net.HardwareAddr
	// Remote is the VTEP to send to.
	Remote netip.Addr
	// VNI and Port, when not 0, override the link's for this entry.
	VNI  uint32
	Port uint16
	// Permanent is true for entries added by hand, false for learnt ones.
	Permanent bool
}

// IsPeer reports whether e is a head-end replication entry (all-zero MAC).
func (e FDBEntry) IsPeer() bool { return bytes.Equal(e.MAC, zeroMAC) }

func (c *Client) fdbNeigh(ctx context.Context, name string, mac net.HardwareAddr, remote netip.Addr) (*rtlink.Neigh, error) {
	l, err := c.conn.LinkByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := checkKind("fdb", l); err != nil {
		return nil, err
	}
	return &rtlink.Neigh{
		Family:    rtlink.FamilyBridge,
		LinkIndex: l.Index,
		State:     rtlink.NUDPermanent | rtlink.NUDNoARP,
		Flags:     rtlink.NTFSelf,
		MAC:       mac,
		IP:        remote,
	}, nil
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
// already there changes nothing.
func (c *Client) AddPeer(ctx context.Context, name string, remote netip.Addr) error {
	if err := checkRemote(remote); err != nil {
		return err
	}
	n, err := c.fdbNeigh(ctx, name, zeroMAC, remote)
	if err != nil {
		return err
	}
	return explainFamily(c.conn.AppendNeigh(ctx, n), name, remote)
}

// explainFamily turns the kernel's EAFNOSUPPORT for an FDB remote into
// words: a vxlan link's remotes are all of its underlay's family.
func explainFamily(err error, name string, remote netip.Addr) error {
	if err == nil || !errors.Is(err, unix.EAFNOSUPPORT) {
		return err
	}
	fam, other := "IPv4", "IPv6"
	if remote.Is6() {
		fam, other = "IPv6", "IPv4"
	}
	return fmt.Errorf("vxlan: remote %s is %s but %s has an %s underlay (set Group or Local to choose it): %w", remote, fam, name, other, err)
}

// RemovePeer removes remote from the link's default FDB entry. A peer that
// is not there is not an error.
func (c *Client) RemovePeer(ctx context.Context, name string, remote netip.Addr) error {
	if err := checkRemote(remote); err != nil {
		return err
	}
	n, err := c.fdbNeigh(ctx, name, zeroMAC, remote)
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
// replacing any entry mac had, so a MAC that moved is re-pointed.
func (c *Client) AddStaticMAC(ctx context.Context, name string, mac net.HardwareAddr, remote netip.Addr) error {
	if !ValidMAC(mac) {
		return &ConfigError{Field: "mac", Value: mac, Accepted: "a 6-byte unicast MAC address other than 00:00:00:00:00:00"}
	}
	if err := checkRemote(remote); err != nil {
		return err
	}
	n, err := c.fdbNeigh(ctx, name, mac, remote)
	if err != nil {
		return err
	}
	return explainFamily(c.conn.ReplaceNeigh(ctx, n), name, remote)
}

// RemoveStaticMAC removes every entry of mac. A MAC without entries is not
// an error.
func (c *Client) RemoveStaticMAC(ctx context.Context, name string, mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return &ConfigError{Field: "mac", Value: mac, Accepted: "a 6-byte MAC address"}
	}
	n, err := c.fdbNeigh(ctx, name, mac, netip.Addr{})
	if err != nil {
		return err
	}
	return ignoreNotFound(c.conn.DeleteNeigh(ctx, n))
}

// FDB lists the link's own forwarding database: peers, static MACs and
// learnt entries.
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
	out := make([]FDBEntry, 0, len(neighs))
	for _, n := range neighs {
		if n.Flags&rtlink.NTFSelf == 0 {
			continue // the bridge's entry for this port, not the vxlan's own
		}
		out = append(out, FDBEntry{MAC: n.MAC, Remote: n.IP, VNI: n.VNI, Port: n.Port, Permanent: n.State&rtlink.NUDPermanent != 0})
	}
	return out, nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, rtlink.ErrNotFound) {
		return nil
	}
	return err
}

func (e FDBEntry) String() string {
	s := fmt.Sprintf("%s dst %s", e.MAC, e.Remote)
	if e.VNI != 0 {
		s += fmt.Sprintf(" vni %d", e.VNI)
	}
	if e.Port != 0 {
		s += fmt.Sprintf(" port %d", e.Port)
	}
	return s
}
