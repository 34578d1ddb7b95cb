package rtlink

import (
	"slices"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestAttrPath(t *testing.T) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(unix.IFLA_MTU, 1400)                                            // offset 0, 8 bytes
	ae.Nested(unix.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error { // offset 8
		nae.String(unix.IFLA_INFO_KIND, "vxlan")                                  // offset 12, 12 bytes
		nae.Nested(unix.IFLA_INFO_DATA, func(d *netlink.AttributeEncoder) error { // offset 24
			d.Uint32(unix.IFLA_VXLAN_ID, 5)                 // offset 28
			d.Flag(unix.IFLA_VXLAN_REMCSUM_NOPARTIAL, true) // offset 36
			return nil
		})
		return nil
	})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		off  int
		want []uint16
	}{
		{0, []uint16{unix.IFLA_MTU}},
		{8, []uint16{unix.IFLA_LINKINFO}},
		{12, []uint16{unix.IFLA_LINKINFO, unix.IFLA_INFO_KIND}},
		{28, []uint16{unix.IFLA_LINKINFO, unix.IFLA_INFO_DATA, unix.IFLA_VXLAN_ID}},
		{36, []uint16{unix.IFLA_LINKINFO, unix.IFLA_INFO_DATA, unix.IFLA_VXLAN_REMCSUM_NOPARTIAL}},
		{4, nil},      // inside IFLA_MTU's payload
		{30, nil},     // inside IFLA_VXLAN_ID's payload
		{len(b), nil}, // past the end
		{-4, nil},     // before the start
	} {
		if got := attrPath(b, tc.off); !slices.Equal(got, tc.want) {
			t.Errorf("offset %d: %v, want %v", tc.off, got, tc.want)
		}
	}
	// A truncated message names nothing and does not panic.
	for n := range len(b) {
		_ = attrPath(b[:n], 36)
	}
}
