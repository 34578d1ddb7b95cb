package rtlink

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/mdlayher/netlink/nlenc"
)

// LinkStats are a link's counters as the kernel keeps them (struct
// rtnl_link_stats64, the IFLA_STATS64 attribute), in the kernel's order. A
// counter the running kernel does not have (RxNoHandler before Linux 4.6,
// RxOtherhostDropped before 5.19) reads 0.
type LinkStats struct {
	RxPackets, TxPackets  uint64
	RxBytes, TxBytes      uint64
	RxErrors, TxErrors    uint64
	RxDropped, TxDropped  uint64
	Multicast, Collisions uint64
	RxLengthErrors        uint64
	RxOverErrors          uint64
	RxCRCErrors           uint64
	RxFrameErrors         uint64
	RxFIFOErrors          uint64
	RxMissedErrors        uint64
	TxAbortedErrors       uint64
	TxCarrierErrors       uint64
	TxFIFOErrors          uint64
	TxHeartbeatErrors     uint64
	TxWindowErrors        uint64
	RxCompressed          uint64
	TxCompressed          uint64
	RxNoHandler           uint64
	RxOtherhostDropped    uint64
}

// minStats64Fields is the number of counters of the oldest struct
// rtnl_link_stats64 (Linux 2.6.35 to 4.5); later kernels append to it.
const minStats64Fields = 23

// fields lists the counters in the kernel's order.
func (s *LinkStats) fields() [25]*uint64 {
	return [25]*uint64{
		&s.RxPackets, &s.TxPackets, &s.RxBytes, &s.TxBytes, &s.RxErrors, &s.TxErrors, &s.RxDropped, &s.TxDropped,
		&s.Multicast, &s.Collisions, &s.RxLengthErrors, &s.RxOverErrors, &s.RxCRCErrors, &s.RxFrameErrors,
		&s.RxFIFOErrors, &s.RxMissedErrors, &s.TxAbortedErrors, &s.TxCarrierErrors, &s.TxFIFOErrors,
		&s.TxHeartbeatErrors, &s.TxWindowErrors, &s.RxCompressed, &s.TxCompressed, &s.RxNoHandler, &s.RxOtherhostDropped,
	}
}

// decodeStats64 reads an IFLA_STATS64 payload: native-endian u64 counters,
// at least the oldest layout's; counters past those this package knows are
// ignored.
func decodeStats64(data []byte) (LinkStats, error) {
	var s LinkStats
	if len(data)%8 != 0 || len(data) < 8*minStats64Fields {
		return s, fmt.Errorf("IFLA_STATS64 of %d bytes: want a multiple of 8, at least %d", len(data), 8*minStats64Fields)
	}
	for i, f := range s.fields() {
		if 8*i+8 > len(data) {
			break
		}
		*f = binary.NativeEndian.Uint64(data[8*i:])
	}
	return s, nil
}

// LinkCounters is a link named with its counters, as [Conn.LinkCounters]
// lists them.
type LinkCounters struct {
	// Index and Name are the link's.
	Index int
	Name  string
	// Stats are its counters.
	Stats LinkStats
}

// LinkCounters lists the counters of the links of the namespace, in one
// dump; a non-empty kind asks the kernel for the links of that kind only
// (say "vxlan"). Only each link's index, name and IFLA_STATS64 are
// decoded, so a listing of thousands of links costs little more than the
// kernel's answer.
func (c *Conn) LinkCounters(ctx context.Context, kind string) ([]LinkCounters, error) {
	const op = "list link counters"
	attrs, err := kindFilter(kind).Encode()
	if err != nil {
		return nil, opError(op, kind, err)
	}
	return dump(ctx, c, op, kind, linuxabi.RTM_GETLINK, append(linkHeader(0, 0, 0), attrs...), func(b []byte) (LinkCounters, bool, error) {
		lc, err := decodeLinkCounters(b)
		return lc, true, err
	})
}

// decodeLinkCounters reads the index, name and IFLA_STATS64 of an
// RTM_NEWLINK message body. A message without IFLA_STATS64 is an error:
// the kernel always sends it when the request does not skip statistics.
func decodeLinkCounters(b []byte) (LinkCounters, error) {
	var lc LinkCounters
	if len(b) < linuxabi.SizeofIfInfomsg {
		return lc, fmt.Errorf("link message of %d bytes is shorter than its header", len(b))
	}
	lc.Index = int(int32(binary.NativeEndian.Uint32(b[4:8]))) // ifi_index, after family, pad and type
	found := false
	err := walkAttributes(b[linuxabi.SizeofIfInfomsg:], func(typ uint16, data []byte) error {
		var err error
		switch typ {
		case linuxabi.IFLA_IFNAME:
			lc.Name = nlenc.String(data)
		case linuxabi.IFLA_STATS64:
			lc.Stats, err = decodeStats64(data)
			found = true
		}
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("no IFLA_STATS64 attribute")
	}
	if err != nil {
		return lc, fmt.Errorf("decode counters of link %q: %w", lc.Name, err)
	}
	return lc, nil
}
