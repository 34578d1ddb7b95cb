package rtlink

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/mdlayher/netlink"
)

// Address families of neighbour entries.
const (
	FamilyIPv4   = linuxabi.AF_INET
	FamilyIPv6   = linuxabi.AF_INET6
	FamilyBridge = linuxabi.AF_BRIDGE // forwarding database (FDB) entries
)

// Neighbour states (NUD_*), a bit set in Neigh.State. On a bridge or vxlan
// FDB, iproute2's `bridge fdb add ... permanent` stores NUDPermanent,
// `static` NUDNoARP, `dynamic` NUDReachable; learnt entries are NUDReachable
// and turn NUDStale as they age.
const (
	NUDIncomplete = linuxabi.NUD_INCOMPLETE // address resolution in progress
	NUDReachable  = linuxabi.NUD_REACHABLE  // confirmed reachable; a learnt or dynamic FDB entry
	NUDStale      = linuxabi.NUD_STALE      // not confirmed lately; a learnt FDB entry that aged
	NUDDelay      = linuxabi.NUD_DELAY      // waiting before a probe
	NUDProbe      = linuxabi.NUD_PROBE      // being probed
	NUDFailed     = linuxabi.NUD_FAILED     // resolution failed
	NUDNoARP      = linuxabi.NUD_NOARP      // never resolved; a static FDB entry
	NUDPermanent  = linuxabi.NUD_PERMANENT  // added by hand, never expires
)

// Neighbour flags (NTF_*), a bit set in Neigh.Flags.
const (
	NTFUse        = linuxabi.NTF_USE         // refresh the entry's "used" time
	NTFSelf       = linuxabi.NTF_SELF        // the entry belongs to the device itself (a vxlan's own FDB)
	NTFMaster     = linuxabi.NTF_MASTER      // the entry belongs to the device's master (a bridge's FDB)
	NTFProxy      = linuxabi.NTF_PROXY       // a proxy ARP/ND entry
	NTFExtLearned = linuxabi.NTF_EXT_LEARNED // installed by a control plane (an EVPN daemon), not learnt from traffic
	NTFOffloaded  = linuxabi.NTF_OFFLOADED   // the entry is offloaded to hardware
	NTFSticky     = 0x40                     // NTF_STICKY, absent from golang.org/x/sys: the entry may not move to another port
	NTFRouter     = linuxabi.NTF_ROUTER      // the neighbour is an IPv6 router
)

// Neigh is a neighbour table entry: an ARP or NDP entry (Family FamilyIPv4
// or FamilyIPv6: IP → MAC on a link), or a bridge forwarding database entry
// (Family FamilyBridge). A vxlan device's own FDB entries (Flags NTFSelf)
// map MAC to the remote VTEP in IP; the all-zero MAC is the default entry
// that floods broadcast, unknown unicast and multicast to every VTEP listed
// under it (head-end replication).
type Neigh struct {
	// Family is FamilyIPv4, FamilyIPv6 or FamilyBridge.
	Family uint8
	// LinkIndex is the index of the link the entry is on.
	LinkIndex int
	// State is the NUD_* bit set (NUDPermanent, NUDNoARP, NUDReachable, ...).
	State uint16
	// Flags is the NTF_* bit set (NTFSelf, NTFMaster, NTFExtLearned, ...).
	Flags uint8
	// IP is NDA_DST: the neighbour's address, or an FDB entry's remote VTEP.
	IP netip.Addr
	// MAC is NDA_LLADDR.
	MAC net.HardwareAddr
	// VNI is NDA_VNI, the VNI to send with; 0 is not sent (the device's VNI).
	VNI uint32
	// Port is NDA_PORT, the remote UDP port; 0 is not sent (the device's port).
	Port uint16
	// IfIndex is NDA_IFINDEX, the underlay interface to reach IP through;
	// 0 is not sent.
	IfIndex int
	// MasterIndex is NDA_MASTER, the bridge an entry with NTFMaster belongs to.
	MasterIndex int
}

// String returns the entry as "MAC dst IP vni N", for errors.
func (n *Neigh) String() string {
	s := fmt.Sprintf("%v", n.MAC)
	if n.IP.IsValid() {
		s += " dst " + n.IP.String()
	}
	if n.VNI != 0 {
		s += fmt.Sprintf(" vni %d", n.VNI)
	}
	return s
}

const sizeofNdmsg = 12

func neighHeader(fam uint8, index int, state uint16, flags uint8) []byte {
	b := make([]byte, sizeofNdmsg)
	b[0] = fam
	binary.NativeEndian.PutUint32(b[4:8], uint32(index))
	binary.NativeEndian.PutUint16(b[8:10], state)
	b[10] = flags
	return b
}

func encodeNeigh(n *Neigh) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	if n.IP.IsValid() {
		ae.Bytes(linuxabi.NDA_DST, n.IP.AsSlice())
	}
	if len(n.MAC) > 0 {
		ae.Bytes(linuxabi.NDA_LLADDR, n.MAC)
	}
	if n.Port != 0 {
		ae.Bytes(linuxabi.NDA_PORT, binary.BigEndian.AppendUint16(nil, n.Port))
	}
	if n.VNI != 0 {
		ae.Uint32(linuxabi.NDA_VNI, n.VNI)
	}
	if n.IfIndex != 0 {
		ae.Uint32(linuxabi.NDA_IFINDEX, uint32(n.IfIndex))
	}
	if n.MasterIndex != 0 {
		ae.Uint32(linuxabi.NDA_MASTER, uint32(n.MasterIndex))
	}
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return append(neighHeader(n.Family, n.LinkIndex, n.State, n.Flags), attrs...), nil
}

func decodeNeigh(b []byte) (*Neigh, error) {
	if len(b) < sizeofNdmsg {
		return nil, fmt.Errorf("neighbour message of %d bytes is shorter than its header", len(b))
	}
	n := &Neigh{
		Family:    b[0],
		LinkIndex: int(binary.NativeEndian.Uint32(b[4:8])),
		State:     binary.NativeEndian.Uint16(b[8:10]),
		Flags:     b[10],
	}
	ad, err := netlink.NewAttributeDecoder(b[sizeofNdmsg:])
	if err != nil {
		return nil, err
	}
	for ad.Next() {
		switch ad.Type() {
		case linuxabi.NDA_DST:
			ip, ok := netip.AddrFromSlice(ad.Bytes())
			if !ok {
				return nil, fmt.Errorf("NDA_DST of %d bytes", len(ad.Bytes()))
			}
			n.IP = ip
		case linuxabi.NDA_LLADDR:
			n.MAC = net.HardwareAddr(ad.Bytes())
		case linuxabi.NDA_PORT:
			n.Port = beUint16(ad)
		case linuxabi.NDA_VNI:
			n.VNI = ad.Uint32()
		case linuxabi.NDA_IFINDEX:
			n.IfIndex = int(ad.Uint32())
		case linuxabi.NDA_MASTER:
			n.MasterIndex = int(ad.Uint32())
		}
	}
	if err := ad.Err(); err != nil {
		return nil, err
	}
	return n, nil
}

// AddNeigh adds n; it fails with ErrExists when an entry for the same key
// exists (for an FDB entry: the same MAC and remote).
func (c *Conn) AddNeigh(ctx context.Context, n *Neigh) error {
	return c.changeNeigh(ctx, "add neighbour", linuxabi.RTM_NEWNEIGH, flagsCreate, n)
}

// AppendNeigh adds n next to existing entries for the same MAC. On a vxlan
// FDB this is how a MAC, typically the all-zero one, gets several remotes.
func (c *Conn) AppendNeigh(ctx context.Context, n *Neigh) error {
	return c.changeNeigh(ctx, "append neighbour", linuxabi.RTM_NEWNEIGH, flagsAppend, n)
}

// ReplaceNeigh adds n or replaces the entry with the same key.
func (c *Conn) ReplaceNeigh(ctx context.Context, n *Neigh) error {
	return c.changeNeigh(ctx, "replace neighbour", linuxabi.RTM_NEWNEIGH, flagsReplace, n)
}

// DeleteNeigh deletes n. For a vxlan FDB entry with IP set only that remote
// is removed; without IP every remote of the MAC is.
func (c *Conn) DeleteNeigh(ctx context.Context, n *Neigh) error {
	return c.changeNeigh(ctx, "delete neighbour", linuxabi.RTM_DELNEIGH, flagsChange, n)
}

func (c *Conn) changeNeigh(ctx context.Context, op string, typ netlink.HeaderType, flags netlink.HeaderFlags, n *Neigh) error {
	b, err := encodeNeigh(n)
	if err != nil {
		return opError(op, n.String(), err)
	}
	_, err = c.execute(ctx, op, n.String(), typ, flags, b)
	return err
}

// Neighs lists the entries of family (FamilyIPv4, FamilyIPv6 or
// FamilyBridge) on the link with the given index, or on all links when
// linkIndex is 0. The kernel filters bridge entries by link itself.
func (c *Conn) Neighs(ctx context.Context, family uint8, linkIndex int) ([]*Neigh, error) {
	const op = "list neighbours"
	what := ""
	if linkIndex != 0 {
		what = fmt.Sprintf("index %d", linkIndex)
	}
	hdrIndex := 0
	if family == FamilyBridge {
		hdrIndex = linkIndex // strict FDB dumps filter on ndm_ifindex
	}
	return dump(ctx, c, op, what, linuxabi.RTM_GETNEIGH, neighHeader(family, hdrIndex, 0, 0), func(b []byte) (*Neigh, bool, error) {
		n, err := decodeNeigh(b)
		return n, err == nil && (linkIndex == 0 || n.LinkIndex == linkIndex), err
	})
}

// NeighEventType says what a [NeighEvent] reports.
type NeighEventType int

// Kinds of neighbour events.
const (
	// NeighAdded: an entry was added or changed (RTM_NEWNEIGH).
	NeighAdded NeighEventType = iota + 1
	// NeighDeleted: an entry was removed (RTM_DELNEIGH).
	NeighDeleted
	// NeighMiss: the kernel asks for an entry it lacks (RTM_GETNEIGH), as a
	// vxlan device does with l2miss (MAC set) or l3miss (IP set).
	NeighMiss
)

// String returns "added", "deleted" or "miss".
func (t NeighEventType) String() string {
	switch t {
	case NeighAdded:
		return "added"
	case NeighDeleted:
		return "deleted"
	case NeighMiss:
		return "miss"
	}
	return fmt.Sprintf("NeighEventType(%d)", int(t))
}

// NeighEvent is one neighbour notification.
type NeighEvent struct {
	// Type says whether the entry was added, deleted or is missing.
	Type NeighEventType
	// Neigh is the entry as the kernel sent it.
	Neigh *Neigh
}

// WatchNeighbors subscribes to the neighbour notifications (RTNLGRP_NEIGH)
// of the namespace chosen by opts and calls fn for each, in order, until ctx
// ends or fn returns an error. It returns fn's error, or ctx's error once
// the context ends. fn runs on the watching goroutine.
func WatchNeighbors(ctx context.Context, fn func(NeighEvent) error, opts ...DialOption) error {
	opts = append(opts, func(dc *dialConfig) error { dc.groups = 1 << (linuxabi.RTNLGRP_NEIGH - 1); return nil })
	var dc dialConfig
	nc, err := dial(&dc, opts)
	if err != nil {
		return err
	}
	if dc.ownsNS {
		dc.ns.Close() // the socket is bound to it; the handle is not needed
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		msgs, err := nc.Receive()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return opError("watch neighbours", "", err)
		}
		for _, m := range msgs {
			var t NeighEventType
			switch m.Header.Type {
			case linuxabi.RTM_NEWNEIGH:
				t = NeighAdded
			case linuxabi.RTM_DELNEIGH:
				t = NeighDeleted
			case linuxabi.RTM_GETNEIGH:
				t = NeighMiss
			default:
				continue
			}
			n, err := decodeNeigh(m.Data)
			if err != nil {
				return opError("watch neighbours", "", err)
			}
			if err := fn(NeighEvent{Type: t, Neigh: n}); err != nil {
				return err
			}
		}
	}
}
