package rtlink_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// ipStats is the part of `ip -s -j link show` that LinkCounters must
// agree with.
type ipStats struct {
	Ifindex int    `json:"ifindex"`
	Ifname  string `json:"ifname"`
	Stats64 struct {
		RX struct {
			Bytes, Packets, Errors, Dropped, Multicast uint64
			OverErrors                                 uint64 `json:"over_errors"`
		} `json:"rx"`
		TX struct {
			Bytes, Packets, Errors, Dropped, Collisions uint64
			CarrierErrors                               uint64 `json:"carrier_errors"`
		} `json:"tx"`
	} `json:"stats64"`
}

// asIP words c as ip's JSON reads it, to compare.
func asIP(c rtlink.LinkCounters) ipStats {
	var s ipStats
	s.Ifindex, s.Ifname = c.Index, c.Name
	st := c.Stats
	s.Stats64.RX.Bytes, s.Stats64.RX.Packets, s.Stats64.RX.Errors, s.Stats64.RX.Dropped = st.RxBytes, st.RxPackets, st.RxErrors, st.RxDropped
	s.Stats64.RX.Multicast, s.Stats64.RX.OverErrors = st.Multicast, st.RxOverErrors
	s.Stats64.TX.Bytes, s.Stats64.TX.Packets, s.Stats64.TX.Errors, s.Stats64.TX.Dropped = st.TxBytes, st.TxPackets, st.TxErrors, st.TxDropped
	s.Stats64.TX.Collisions, s.Stats64.TX.CarrierErrors = st.Collisions, st.TxCarrierErrors
	return s
}

// TestIntegrationLinkCounters reads a veth's counters after traffic and
// compares them with what `ip -s -j link show` reads from the kernel; a
// read between two equal readings of ip is compared, so that a stray packet
// (IPv6 neighbour discovery) cannot make the test flaky.
func TestIntegrationLinkCounters(t *testing.T) {
	a, b := testns.New(t), testns.New(t)
	an, _ := testns.Underlay(t, a, b, netip.MustParsePrefix("198.18.40.1/24"), netip.MustParsePrefix("198.18.40.2/24"))
	if err := a.Ping(netip.MustParseAddr("198.18.40.2"), 3); err != nil {
		t.Fatal(err)
	}
	c := a.Dial()
	readIP := func() ipStats {
		var got []ipStats
		out := a.IP("-s", "-j", "link", "show", "dev", an)
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
			t.Fatalf("ip -s -j link show %s: %v: %s", an, err, out)
		}
		return got[0]
	}
	for try := 0; ; try++ {
		before := readIP()
		all, err := c.LinkCounters(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		after := readIP()
		if before != after {
			if try == 10 {
				t.Fatalf("the counters of %s kept changing between two readings", an)
			}
			continue
		}
		var ours *rtlink.LinkCounters
		for i := range all {
			if all[i].Name == an {
				ours = &all[i]
			}
		}
		if ours == nil {
			t.Fatalf("LinkCounters listed no %s among %d links", an, len(all))
		}
		if got := asIP(*ours); got != before {
			t.Fatalf("LinkCounters: %+v\nip -s -j:     %+v", got, before)
		}
		if before.Stats64.TX.Packets < 3 || before.Stats64.RX.Packets < 3 || before.Stats64.TX.Bytes < 3*84 {
			t.Fatalf("after 3 pings, %s counted %+v: fewer than the pings", an, before.Stats64)
		}
		t.Logf("%s: %+v", an, before.Stats64)
		break
	}
}

// TestIntegrationLinkCountersKind: with a kind, only links of that kind
// are listed.
func TestIntegrationLinkCountersKind(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	for i := range 3 {
		mustLink(t, c, &rtlink.Link{Name: fmt.Sprintf("br%d", i), Data: &rtlink.Bridge{}})
	}
	mustLink(t, c, &rtlink.Link{Name: "vx0", Data: &rtlink.VXLAN{ID: rtlink.Ptr[uint32](42), Port: rtlink.Ptr[uint16](4789)}})
	got, err := c.LinkCounters(ctx, "vxlan")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "vx0" {
		t.Fatalf("LinkCounters(vxlan) = %+v, want vx0 alone", got)
	}
	all, err := c.LinkCounters(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 { // lo, 3 bridges, vx0
		t.Fatalf("LinkCounters listed %d links, want 5", len(all))
	}
}
