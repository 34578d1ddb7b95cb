package vxlan_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// One VNI filtering device carries many VNIs, each with its own multicast
// group or unicast remote if need be, instead of one vxlan link per VNI
// (iproute2: `ip link add vxf type vxlan external vnifilter dev eth0` and
// `bridge vni add`).
func ExampleClient_AddVNI() {
	ctx := context.Background()
	c, err := vxlan.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	err = c.Create(ctx, vxlan.Config{Name: "vxf", CollectMetadata: true, VNIFilter: true, Device: "eth0", Up: true})
	if err != nil {
		log.Fatal(err)
	}
	err = c.AddVNI(ctx, "vxf",
		vxlan.VNIRange{First: 10},
		vxlan.VNIRange{First: 20, Last: 29},
		vxlan.VNIRange{First: 30, Group: netip.MustParseAddr("239.1.1.30")})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.DeleteVNI(ctx, "vxf", vxlan.VNIRange{First: 25, Last: 26}); err != nil {
		log.Fatal(err)
	}
	vnis, err := c.VNIs(ctx, "vxf")
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range vnis {
		fmt.Println(r) // 10, 20-24, 27-29, 30 group 239.1.1.30
	}
}

// With Proxy set, a vxlan link answers ARP and neighbour solicitations for
// the addresses a control plane knows, so they are not flooded to every
// remote VTEP.
func ExampleClient_AddProxyEntry() {
	ctx := context.Background()
	c, err := vxlan.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	err = c.Create(ctx, vxlan.Config{Name: "vx42", VNI: 42, Device: "eth0", Proxy: true, Learning: vxlan.Ptr(false), Up: true})
	if err != nil {
		log.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:42:c6:12:00:0a")
	if err := c.AddProxyEntry(ctx, "vx42", netip.MustParseAddr("198.18.0.10"), mac); err != nil {
		log.Fatal(err)
	}
	entries, err := c.ProxyEntries(ctx, "vx42")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e) // 198.18.0.10 lladdr 02:42:c6:12:00:0a permanent
	}
}
