package vxlan_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Update changes what the kernel lets change, in place, and refuses the rest
// before sending anything.
func TestIntegrationUpdate(t *testing.T) {
	ns, c := host(t)
	ns.IP("link", "add", "ul2", "type", "veth", "peer", "name", "ul3")
	cfg := vxlan.Config{Name: "vx0", VNI: 42, Device: "ul0", Local: mustAddr("198.18.1.1"), Group: mustAddr("198.18.1.2"), TTL: 10, MTU: 1400}
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	before := ns.LinkJSON("vx0")

	next := cfg
	next.Device, next.Local, next.Group = "ul2", mustAddr("198.18.1.3"), mustAddr("198.18.1.4")
	next.TTL, next.TOS, next.DF = 20, 4, vxlan.DFSet
	next.Learning, next.Ageing, next.LocalBypass = vxlan.Ptr(false), vxlan.Ptr(100*time.Second), vxlan.Ptr(false)
	next.MTU, next.Alias, next.Up = 1300, "updated", true
	diffs, err := c.Update(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 11 {
		t.Errorf("Update reports %d changes: %+v", len(diffs), diffs)
	}
	after := ns.LinkJSON("vx0")
	if after.Ifindex != before.Ifindex {
		t.Fatalf("Update recreated the link: index %d -> %d", before.Ifindex, after.Ifindex)
	}
	checkIP(t, after, map[string]string{
		"link": "ul2", "local": "198.18.1.3", "remote": "198.18.1.4", "ttl": "20", "tos": "0x4", "df": "set",
		"learning": "false", "ageing": "100", "link.mtu": "1300", "link.ifalias": "updated", "link.up": "true",
	})
	if _, err := c.Ensure(ctx, next); err != nil {
		t.Fatalf("Ensure after Update: %v", err)
	}
	if diffs, err := c.Update(ctx, next); err != nil || len(diffs) != 0 {
		t.Fatalf("second Update: %v %v", diffs, err)
	}

	// Settings fixed at creation: refused, nothing sent.
	fixed := next
	fixed.VNI, fixed.Port, fixed.TTL = 43, 8472, 30
	_, err = c.Update(ctx, fixed)
	var ue *vxlan.UpdateError
	if !errors.As(err, &ue) || !errors.Is(err, vxlan.ErrNotSupported) || len(ue.Diffs) != 2 {
		t.Fatalf("Update of VNI and Port: %v", err)
	}
	if got, _ := c.Get(ctx, "vx0"); got.TTL != 20 || got.VNI != 42 {
		t.Fatalf("a refused Update changed the link: %+v", got)
	}
	if _, err := c.Update(ctx, vxlan.Config{Name: "ul0", VNI: 1}); !errors.Is(err, vxlan.ErrWrongKind) {
		t.Fatalf("Update of a veth: %v", err)
	}
	if _, err := c.Update(ctx, vxlan.Config{Name: "nosuch", VNI: 1}); !errors.Is(err, vxlan.ErrNotFound) {
		t.Fatalf("Update of a missing link: %v", err)
	}
}

// The attributes Update does not send are those the kernel refuses to change
// on a live link: each changelink is refused with its own message.
func TestIntegrationChangelinkRefuses(t *testing.T) {
	_, c := host(t)
	if err := c.Create(ctx, vxlan.Config{Name: "vx0", VNI: 42, Group: mustAddr("fd00:1::2")}); err != nil {
		t.Fatal(err)
	}
	conn := c.Conn()
	l, err := conn.LinkByName(ctx, "vx0")
	if err != nil {
		t.Fatal(err)
	}
	yes := vxlan.Ptr(true)
	for _, tc := range []struct {
		field string
		data  rtlink.VXLAN
	}{
		{"VNI", rtlink.VXLAN{ID: vxlan.Ptr(uint32(43))}},
		{"Port", rtlink.VXLAN{Port: vxlan.Ptr(uint16(8472))}},
		{"SrcPorts", rtlink.VXLAN{Ports: &rtlink.PortRange{Low: 1000, High: 2000}}},
		{"Limit", rtlink.VXLAN{Limit: vxlan.Ptr(uint32(10))}},
		{"UDPChecksum", rtlink.VXLAN{UDPCSum: vxlan.Ptr(false)}},
		{"TTLInherit", rtlink.VXLAN{TTLInherit: true}},
		{"Proxy", rtlink.VXLAN{Proxy: yes}},
		{"RSC", rtlink.VXLAN{RSC: yes}},
		{"L2Miss", rtlink.VXLAN{L2Miss: yes}},
		{"L3Miss", rtlink.VXLAN{L3Miss: yes}},
		{"CollectMetadata", rtlink.VXLAN{CollectMetadata: yes}},
		{"VNIFilter", rtlink.VXLAN{VNIFilter: yes}},
		{"UDPZeroChecksum6TX", rtlink.VXLAN{UDPZeroCSum6TX: yes}},
		{"UDPZeroChecksum6RX", rtlink.VXLAN{UDPZeroCSum6RX: yes}},
		{"RemoteChecksumTX", rtlink.VXLAN{RemCSumTX: yes}},
		{"RemoteChecksumRX", rtlink.VXLAN{RemCSumRX: yes}},
		{"RemoteChecksumNoPartial", rtlink.VXLAN{RemCSumNoPartial: true}},
		{"GBP", rtlink.VXLAN{GBP: true}},
		{"GPE", rtlink.VXLAN{GPE: true}},
		{"Group of another family", rtlink.VXLAN{Group: netip.MustParseAddr("198.18.1.2")}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			if tc.data.RemCSumNoPartial {
				// A kernel that does not offer the setting refuses it for
				// that reason, not because it cannot be changed.
				requireOffered(t, c, vxlan.Config{VNI: 7, RemoteChecksumRX: true, RemoteChecksumNoPartial: true})
			}
			err := conn.ChangeLink(ctx, l.Index, &tc.data)
			var oe *rtlink.OpError
			if !errors.Is(err, vxlan.ErrNotSupported) || !errors.As(err, &oe) || !strings.Contains(strings.ToLower(oe.Message), "change") && !strings.Contains(oe.Message, "family") {
				t.Errorf("changelink of %s: %v", tc.field, err)
			}
		})
	}
	// A changelink with the kind of another driver is refused before sending.
	if err := conn.ChangeLink(ctx, l.Index, &rtlink.Bridge{}); !errors.Is(err, rtlink.ErrWrongKind) {
		t.Errorf("changelink as a bridge: %v", err)
	}
}
