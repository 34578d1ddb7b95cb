package linuxhost

import (
	"bytes"
	"context"
	"fmt"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// Traffic is what the kernel counted on a link since it was made.
type Traffic struct {
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
	RxDropped, TxDropped uint64
	RxErrors, TxErrors   uint64
}

// NetworkCounters are the numbers the kernel keeps for a network's vxlan
// link: its traffic and its forwarding database.
type NetworkCounters struct {
	// Link is the vxlan link's name.
	Link string `json:"link"`
	// Traffic is what the link counted.
	Traffic Traffic `json:"traffic"`
	// FDBEntries counts the link's own FDB entries (remote MACs, learnt or
	// static, and head-end replication entries).
	FDBEntries int `json:"fdbEntries"`
	// FDBPeers counts its head-end replication entries (all-zero MAC): the
	// remote VTEPs that get broadcast, unknown unicast and multicast.
	FDBPeers int `json:"fdbPeers"`
}

// Counters reads the counters of the vxlan links of specs with two
// requests whatever their number: one dump of the host's vxlan links with
// their counters, one dump of the host's FDB. The answer has an entry for
// each spec whose vxlan link exists, by network ID; parent networks, which
// have none, and networks whose link is missing are left out (CheckNetwork
// reports those).
func (h *Host) Counters(ctx context.Context, specs []*fabric.NetworkSpec) (map[string]*NetworkCounters, error) {
	links, err := h.conn.LinkCounters(ctx, linkKindVXLAN)
	if err != nil {
		return nil, fmt.Errorf("reading the vxlan links' counters: %w", err)
	}
	byName := make(map[string]*rtlink.LinkCounters, len(links))
	for i := range links {
		byName[links[i].Name] = &links[i]
	}
	out := make(map[string]*NetworkCounters, len(specs))
	byIndex := make(map[int]*NetworkCounters, len(specs))
	for _, spec := range specs {
		if spec.Kind == fabric.KindParent {
			continue
		}
		l := byName[spec.VXLAN.Name]
		if l == nil {
			continue
		}
		s := l.Stats
		nc := &NetworkCounters{Link: l.Name, Traffic: Traffic{
			RxBytes: s.RxBytes, TxBytes: s.TxBytes, RxPackets: s.RxPackets, TxPackets: s.TxPackets,
			RxDropped: s.RxDropped, TxDropped: s.TxDropped, RxErrors: s.RxErrors, TxErrors: s.TxErrors,
		}}
		out[spec.ID] = nc
		byIndex[l.Index] = nc
	}
	if len(byIndex) == 0 {
		return out, nil
	}
	neighs, err := h.conn.Neighs(ctx, rtlink.FamilyBridge, 0)
	if err != nil {
		return nil, fmt.Errorf("reading the FDB: %w", err)
	}
	for _, n := range neighs {
		nc := byIndex[n.LinkIndex]
		if nc == nil || n.Flags&rtlink.NTFSelf == 0 {
			continue // another link's, or the bridge's entry for the port
		}
		nc.FDBEntries++
		if bytes.Equal(n.MAC, zeroMAC[:]) {
			nc.FDBPeers++
		}
	}
	return out, nil
}

// zeroMAC is the MAC of head-end replication entries.
var zeroMAC [6]byte
