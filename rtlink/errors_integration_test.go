package rtlink_test

import (
	"errors"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// When the kernel points at the attribute it refuses, OpError.Attr names
// it by its type path in the request: a VNI of 25 bits is refused by the
// vxlan driver at IFLA_VXLAN_ID, nested in IFLA_LINKINFO and
// IFLA_INFO_DATA, after the other attributes of the request.
func TestIntegrationErrorNamesAttribute(t *testing.T) {
	c := testns.New(t).Dial()
	vni, ttl := uint32(1<<24), uint8(9)
	_, err := c.CreateLink(ctx, &rtlink.Link{Name: "vx-bad", MTU: 1400, Alias: "x", Data: &rtlink.VXLAN{ID: &vni, TTL: &ttl}})
	var oe *rtlink.OpError
	if !errors.As(err, &oe) || !errors.Is(err, unix.ERANGE) && !errors.Is(err, unix.EINVAL) {
		t.Fatalf("VNI %d: %v", vni, err)
	}
	want := []uint16{unix.IFLA_LINKINFO, unix.IFLA_INFO_DATA, unix.IFLA_VXLAN_ID}
	if !slices.Equal(oe.Attr, want) {
		t.Fatalf("Attr = %v, want %v (%v)", oe.Attr, want, err)
	}
	// A refusal without a pointer names no attribute.
	if _, err := c.CreateLink(ctx, &rtlink.Link{Name: "lo", Data: &rtlink.Bridge{}}); !errors.As(err, &oe) || oe.Attr != nil {
		t.Fatalf("name taken: %v, Attr %v", err, oe.Attr)
	}
}
