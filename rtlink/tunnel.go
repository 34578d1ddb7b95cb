package rtlink

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/mdlayher/netlink"
)

// Tunnel (VNI filter) messages, from the kernel's include/uapi/linux/if_link.h
// (Linux 5.18 and later; golang.org/x/sys knows only the message types).
const (
	// tunnel_msg.flags: include per-VNI statistics in a dump.
	tunnelMsgFlagStats = 0x01

	// Top-level attribute of RTM_*TUNNEL: one VNI or range (nested).
	vxlanVNIFilterEntry = 1

	// Attributes inside VXLAN_VNIFILTER_ENTRY.
	vniEntryStart  = 1 // VXLAN_VNIFILTER_ENTRY_START, u32
	vniEntryEnd    = 2 // VXLAN_VNIFILTER_ENTRY_END, u32
	vniEntryGroup  = 3 // VXLAN_VNIFILTER_ENTRY_GROUP, 4 bytes
	vniEntryGroup6 = 4 // VXLAN_VNIFILTER_ENTRY_GROUP6, 16 bytes
	vniEntryStats  = 5 // VXLAN_VNIFILTER_ENTRY_STATS, nested (dumps only)

	// Attributes inside VXLAN_VNIFILTER_ENTRY_STATS, each a u64
	// (VNIFILTER_ENTRY_STATS_PAD = 9 only aligns them).
	vniStatsRxBytes  = 1
	vniStatsRxPkts   = 2
	vniStatsRxDrops  = 3
	vniStatsRxErrors = 4
	vniStatsTxBytes  = 5
	vniStatsTxPkts   = 6
	vniStatsTxDrops  = 7
	vniStatsTxErrors = 8

	sizeofTunnelMsg = 8 // struct tunnel_msg {u8 family; u8 flags; u16 reserved; u32 ifindex}
)

// VNIFilterEntry is one VNI, or one inclusive range of VNIs, of a vxlan
// device in VNI filtering mode (created with [VXLAN] CollectMetadata and
// VNIFilter set): the VNIs the device accepts and sends, each with an
// optional multicast group or unicast remote of its own.
//
// It is the VXLAN_VNIFILTER_ENTRY attribute of RTM_NEWTUNNEL, RTM_DELTUNNEL
// and RTM_GETTUNNEL messages.
type VNIFilterEntry struct {
	// Start is VXLAN_VNIFILTER_ENTRY_START, the first VNI.
	Start uint32
	// End is VXLAN_VNIFILTER_ENTRY_END, the last VNI of a range; 0 is not
	// sent, and the kernel leaves it out for a single VNI.
	End uint32
	// Group is VXLAN_VNIFILTER_ENTRY_GROUP or GROUP6: the multicast group or
	// unicast remote of these VNIs. The zero Addr is not sent: the VNIs use
	// the device's own remote, if it has one.
	Group netip.Addr
	// Stats holds the per-VNI counters; only dumps that ask for them
	// ([Conn.VNIFilter] with stats) fill it in. The kernel then reports
	// every VNI on its own, never as a range.
	Stats *VNIStats
}

// VNIStats are the counters of one VNI of a VNI filtering device
// (VXLAN_VNIFILTER_ENTRY_STATS).
type VNIStats struct {
	// RxBytes, RxPackets, RxDrops and RxErrors count what the device
	// received for the VNI (VNIFILTER_ENTRY_STATS_RX_*).
	RxBytes, RxPackets, RxDrops, RxErrors uint64
	// TxBytes, TxPackets, TxDrops and TxErrors count what it sent
	// (VNIFILTER_ENTRY_STATS_TX_*).
	TxBytes, TxPackets, TxDrops, TxErrors uint64
}

// String formats e as "10", "20-29" or "30 group 239.1.1.30".
func (e VNIFilterEntry) String() string {
	s := fmt.Sprint(e.Start)
	if e.End != 0 && e.End != e.Start {
		s += fmt.Sprintf("-%d", e.End)
	}
	if e.Group.IsValid() {
		s += " group " + e.Group.String()
	}
	return s
}

// tunnelHeader marshals a struct tunnel_msg.
func tunnelHeader(index int, flags uint8) []byte {
	b := make([]byte, sizeofTunnelMsg)
	b[0] = linuxabi.AF_BRIDGE
	b[1] = flags
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	return b
}

// encodeTunnel returns the body of an RTM_NEWTUNNEL or RTM_DELTUNNEL request
// for the device with the given index.
func encodeTunnel(index int, entries []VNIFilterEntry) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	for _, e := range entries {
		ae.Nested(vxlanVNIFilterEntry, func(nae *netlink.AttributeEncoder) error {
			nae.Uint32(vniEntryStart, e.Start)
			if e.End != 0 {
				nae.Uint32(vniEntryEnd, e.End)
			}
			switch {
			case e.Group.Is4():
				b := e.Group.As4()
				nae.Bytes(vniEntryGroup, b[:])
			case e.Group.Is6():
				b := e.Group.As16()
				nae.Bytes(vniEntryGroup6, b[:])
			}
			return nil
		})
	}
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return append(tunnelHeader(index, 0), attrs...), nil
}

// decodeTunnel parses an RTM_NEWTUNNEL or RTM_DELTUNNEL message body into
// the device index and its entries.
func decodeTunnel(b []byte) (int, []VNIFilterEntry, error) {
	if len(b) < sizeofTunnelMsg {
		return 0, nil, fmt.Errorf("tunnel message of %d bytes is shorter than its header", len(b))
	}
	if b[0] != linuxabi.AF_BRIDGE {
		return 0, nil, fmt.Errorf("tunnel message of family %d, want AF_BRIDGE (%d)", b[0], linuxabi.AF_BRIDGE)
	}
	index := int(binary.NativeEndian.Uint32(b[4:8]))
	ad, err := netlink.NewAttributeDecoder(b[sizeofTunnelMsg:])
	if err != nil {
		return index, nil, err
	}
	var out []VNIFilterEntry
	for ad.Next() {
		if ad.Type() != vxlanVNIFilterEntry {
			continue
		}
		var e VNIFilterEntry
		ad.Nested(func(nad *netlink.AttributeDecoder) error { return decodeVNIEntry(nad, &e) })
		out = append(out, e)
	}
	if err := ad.Err(); err != nil {
		return index, nil, err
	}
	return index, out, nil
}

func decodeVNIEntry(ad *netlink.AttributeDecoder, e *VNIFilterEntry) error {
	for ad.Next() {
		switch ad.Type() {
		case vniEntryStart:
			e.Start = ad.Uint32()
		case vniEntryEnd:
			e.End = ad.Uint32()
		case vniEntryGroup, vniEntryGroup6:
			b := ad.Bytes()
			want := 4
			if ad.Type() == vniEntryGroup6 {
				want = 16
			}
			ip, ok := netip.AddrFromSlice(b)
			if !ok || len(b) != want {
				return fmt.Errorf("VNI group attribute %d of %d bytes, want %d", ad.Type(), len(b), want)
			}
			if !ip.IsUnspecified() {
				e.Group = ip
			}
		case vniEntryStats:
			e.Stats = &VNIStats{}
			ad.Nested(func(nad *netlink.AttributeDecoder) error { return decodeVNIStats(nad, e.Stats) })
		}
	}
	return ad.Err()
}

func decodeVNIStats(ad *netlink.AttributeDecoder, s *VNIStats) error {
	fields := map[uint16]*uint64{
		vniStatsRxBytes: &s.RxBytes, vniStatsRxPkts: &s.RxPackets, vniStatsRxDrops: &s.RxDrops, vniStatsRxErrors: &s.RxErrors,
		vniStatsTxBytes: &s.TxBytes, vniStatsTxPkts: &s.TxPackets, vniStatsTxDrops: &s.TxDrops, vniStatsTxErrors: &s.TxErrors,
	}
	for ad.Next() {
		if p, ok := fields[ad.Type()]; ok {
			*p = ad.Uint64()
		}
	}
	return ad.Err()
}

// AddVNIFilter adds the VNIs and ranges in entries to the VNI filter of the
// vxlan device with the given index, in one RTM_NEWTUNNEL request. A VNI the
// device already has takes the entry's Group. The kernel processes the VNIs
// in order and stops at the first it refuses, keeping those before it.
//
// A vxlan device without VNI filtering gives unix.EOPNOTSUPP (matching
// ErrNotSupported), any other device unix.EINVAL with the kernel's "The
// device is not a vxlan device".
func (c *Conn) AddVNIFilter(ctx context.Context, index int, entries []VNIFilterEntry) error {
	return c.changeTunnel(ctx, "add vni", linuxabi.RTM_NEWTUNNEL, index, entries)
}

// DeleteVNIFilter removes the VNIs and ranges in entries from the VNI
// filter of the vxlan device with the given index, in one RTM_DELTUNNEL
// request. A VNI the device does not have gives unix.ENOENT (matching
// ErrNotFound); the VNIs before it in the same request are removed.
func (c *Conn) DeleteVNIFilter(ctx context.Context, index int, entries []VNIFilterEntry) error {
	return c.changeTunnel(ctx, "delete vni", linuxabi.RTM_DELTUNNEL, index, entries)
}

func (c *Conn) changeTunnel(ctx context.Context, op string, typ netlink.HeaderType, index int, entries []VNIFilterEntry) error {
	what := fmt.Sprintf("index %d", index)
	if len(entries) == 0 {
		return errorf(op, what, "no VNIs given")
	}
	b, err := encodeTunnel(index, entries)
	if err != nil {
		return opError(op, what, err)
	}
	_, err = c.execute(ctx, op, what, typ, flagsChange, b)
	return err
}

// VNIFilter lists the VNI filter of the vxlan device with the given index
// (RTM_GETTUNNEL dump), in ascending VNI order. Without stats the kernel
// folds consecutive VNIs with the same group into one range; with stats it
// reports each VNI on its own with its counters.
//
// A vxlan device without VNI filtering gives unix.EINVAL; an index that
// does not exist gives ErrNotFound.
func (c *Conn) VNIFilter(ctx context.Context, index int, stats bool) ([]VNIFilterEntry, error) {
	const op = "list vnis"
	what := fmt.Sprintf("index %d", index)
	if index == 0 {
		return nil, errorf(op, what, "no device index given")
	}
	var flags uint8
	if stats {
		flags = tunnelMsgFlagStats
	}
	batches, err := dump(ctx, c, op, what, linuxabi.RTM_GETTUNNEL, tunnelHeader(index, flags), func(b []byte) ([]VNIFilterEntry, bool, error) {
		got, entries, err := decodeTunnel(b)
		return entries, got == index, err
	})
	if err != nil {
		return nil, err
	}
	var out []VNIFilterEntry
	for _, entries := range batches {
		out = append(out, entries...)
	}
	return out, nil
}
