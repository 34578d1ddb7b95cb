package vxlan_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Create a VXLAN link on eth0 that replicates broadcast traffic to two
// remote VTEPs by unicast (no multicast in the underlay), and bring it up.
func ExampleClient_Create() {
	ctx := context.Background()
	c, err := vxlan.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	err = c.Create(ctx, vxlan.Config{
		Name:     "vx42",
		VNI:      42,
		Device:   "eth0",
		Local:    netip.MustParseAddr("198.18.0.1"),
		Learning: vxlan.Ptr(true),
		Up:       true,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, remote := range []string{"198.18.0.2", "198.18.0.3"} {
		if err := c.AddPeer(ctx, "vx42", netip.MustParseAddr(remote)); err != nil {
			log.Fatal(err)
		}
	}
}

// Ensure is the idempotent form of Create: run it at every start of an
// agent. It creates the link once, then checks it on every later call.
func ExampleClient_Ensure() {
	ctx := context.Background()
	c, err := vxlan.Dial(rtlink.WithNetNSPath("blue")) // a namespace made by `ip netns add blue`
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	cfg := vxlan.Config{Name: "vx42", VNI: 42, Group: netip.MustParseAddr("239.1.1.42"), Device: "eth0", Up: true}
	created, err := c.Ensure(ctx, cfg)
	var mismatch *vxlan.MismatchError
	switch {
	case errors.As(err, &mismatch):
		for _, d := range mismatch.Diffs {
			log.Printf("%s: %s is %s, want %s", mismatch.Name, d.Field, d.Have, d.Want)
		}
	case err != nil:
		log.Fatal(err)
	case created:
		log.Print("created vx42")
	}
}

// Head-end replication: every broadcast, unknown-unicast and multicast frame
// is sent by unicast to each peer, so the underlay needs no multicast.
// Peers are added and removed as hosts join and leave the fabric.
func ExampleClient_AddPeer() {
	ctx := context.Background()
	c, err := vxlan.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.AddPeer(ctx, "vx42", netip.MustParseAddr("198.18.0.4")); err != nil {
		log.Fatal(err)
	}
	if err := c.RemovePeer(ctx, "vx42", netip.MustParseAddr("198.18.0.3")); err != nil {
		log.Fatal(err)
	}
	peers, err := c.Peers(ctx, "vx42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(peers)
}

// Static MACs: the FDB of a unicast fabric, kept by a control
// plane that knows where every VTEP and MAC is.
func ExampleClient_AddStaticMAC() {
	ctx := context.Background()
	c, err := vxlan.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	mac, _ := net.ParseMAC("02:42:c6:13:00:0a")
	if err := c.AddStaticMAC(ctx, "vx42", mac, netip.MustParseAddr("198.18.0.2")); err != nil {
		log.Fatal(err)
	}
	entries, err := c.FDB(ctx, "vx42")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e)
	}
}

// List and FDB: what examples/inspect prints, every vxlan link of a
// namespace with its settings and forwarding database.
func ExampleClient_List() {
	ctx := context.Background()
	c, err := vxlan.Dial(rtlink.WithNetNSPath("blue"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	links, err := c.List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range links {
		fmt.Printf("%s: VNI %d, port %d, device %q\n", l.Name, l.VNI, l.Port, l.Device)
		entries, err := c.FDB(ctx, l.Name)
		if err != nil {
			log.Fatal(err)
		}
		for _, e := range entries {
			fmt.Println("  ", e)
		}
	}
}

// Validate reports the first bad field with the values accepted, before
// anything reaches the kernel.
func ExampleConfig_Validate() {
	cfg := vxlan.Config{Name: "vx0", VNI: 1 << 24}
	fmt.Println(cfg.Validate())

	cfg = vxlan.Config{Name: "vx0", VNI: 7, Ageing: vxlan.Ptr(time.Duration(0))}
	fmt.Println(cfg.Validate())
	// Output:
	// vxlan: invalid VNI 16777216: accepted 0..16777215
	// vxlan: invalid Ageing 0s: accepted whole seconds from 1s to 4294967295s; the kernel turns 0 into 300s
}

// A peer reached with its own VNI and port, out of a given underlay device:
// what a control plane installs for a VTEP that differs from the link's
// defaults.
func ExampleWithVNI() {
	ctx := context.Background()
	c, err := vxlan.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	err = c.AddPeer(ctx, "vx42", netip.MustParseAddr("198.18.0.5"),
		vxlan.WithVNI(4242), vxlan.WithPort(8472), vxlan.WithVia("eth1"))
	if err != nil {
		log.Fatal(err)
	}
}

// Ensure tells a VNI already taken by another link from a taken name.
func ExampleVNIConflictError() {
	ctx := context.Background()
	c, err := vxlan.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_, err = c.Ensure(ctx, vxlan.Config{Name: "vx42b", VNI: 42})
	var conflict *vxlan.VNIConflictError
	if errors.As(err, &conflict) {
		fmt.Printf("VNI %d is %s's; choose another VNI or port\n", conflict.VNI, conflict.Other)
	}
}

// Update changes a live link in place where the kernel allows it, and says
// which settings it cannot change.
func ExampleClient_Update() {
	ctx := context.Background()
	c, err := vxlan.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	cfg, err := c.Get(ctx, "vx42")
	if err != nil {
		log.Fatal(err)
	}
	cfg.TTL, cfg.Ageing = 32, vxlan.Ptr(10*time.Minute)
	changed, err := c.Update(ctx, cfg)
	var fixed *vxlan.UpdateError
	switch {
	case errors.As(err, &fixed):
		fmt.Println("needs delete and create:", fixed.Diffs)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("changed:", changed)
}

// A Config as JSON reads as a person would write it.
func ExampleConfig_MarshalJSON() {
	cfg := vxlan.Config{
		Name: "vx42", VNI: 42, Device: "eth0", Local: netip.MustParseAddr("198.18.0.1"),
		SrcPorts: vxlan.PortRange{Low: 5000, High: 6000}, DF: vxlan.DFInherit,
		Learning: vxlan.Ptr(false), Ageing: vxlan.Ptr(5 * time.Minute),
		HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, 42},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	// Output:
	// {"name":"vx42","vni":42,"local":"198.18.0.1","device":"eth0","src_ports":"5000-6000","df":"inherit","learning":false,"ageing_seconds":300,"hardware_addr":"02:00:00:00:00:2a"}
}
