package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/TrilliumIT/docker-vxlan-plugin/ipam"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// IPAMFuncs returns the IPAM plugin's commands (ADD, DEL, CHECK, GC and
// STATUS) for skel.PluginMainFuncs; it runs in the host's namespace, as
// CNI runs IPAM plugins.
func IPAMFuncs() skel.CNIFuncs {
	return skel.CNIFuncs{
		Add:    func(args *skel.CmdArgs) error { return ipamAdd(context.Background(), args) },
		Del:    ipamDelete,
		Check:  ipamCheck,
		GC:     ipamGC,
		Status: func(*skel.CmdArgs) error { return nil },
	}
}

// ipamAdd hands out an address of each range to the attachment, or the
// ones asked for, after probing the segment for each: an address another
// host's interface answers for is skipped, or, when asked for, refused
// with the MAC that answered. A second ADD of an attachment returns the
// addresses it holds.
func ipamAdd(ctx context.Context, args *skel.CmdArgs) error {
	c, err := parseIPAMConfig(args.StdinData, args.Args)
	if err != nil {
		return err
	}
	d, err := openLeases(c.networkDir(), true)
	if err != nil {
		return err
	}
	defer d.close()
	d.containerID, d.ifName = args.ContainerID, args.IfName
	leases, err := d.read()
	if err != nil {
		return err
	}
	if held := of(leases, args.ContainerID, args.IfName); len(held) > 0 {
		addrs := make([]netip.Addr, len(held))
		for i, l := range held {
			addrs[i] = l.Addr
		}
		return printIPAMResult(c, addrs)
	}
	link := c.Link
	if c.Derive {
		if link, err = vxlanSegmentLink(ctx, args); err != nil {
			return err
		}
	}
	seg, err := linuxhost.OpenSegment(link, linuxhost.Guard{}, nil)
	if err != nil {
		if _, lerr := net.InterfaceByName(link); lerr != nil {
			return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("ipam: the link %s to probe the segment through is not on this host", link), err.Error())
		}
		return err
	}
	defer seg.Close()
	got, err := allocate(ctx, c, d, leases, seg)
	if err != nil {
		return err
	}
	return printIPAMResult(c, got)
}

// allocate hands out an address of each range, probed on seg; d holds the
// leases, which are the network's leases on this host.
func allocate(ctx context.Context, c *ipamConf, d *leaseDir, leases []heldLease, seg ipam.Segment) ([]netip.Addr, error) {
	// A process that lives for one call holds no address ready.
	alloc := ipam.New(d, ipam.WithReady(0))
	for _, r := range c.Ranges {
		id := r.Subnet.String()
		held := []ipam.Lease{{Addr: r.Gateway, Use: ipam.UseGateway}}
		for _, l := range leases {
			if r.Subnet.Contains(l.Addr) {
				held = append(held, ipam.Lease{Addr: l.Addr, Use: ipam.UseContainer, Time: l.Time})
			}
		}
		if err := alloc.Open(id, ipam.Pool{Subnet: r.Subnet, Range: r.Range}, held); err != nil {
			return nil, invalidConfig("ipam: %v", err)
		}
		if err := alloc.Attach(id, seg); err != nil {
			return nil, err
		}
	}
	// The ranges (an IPv4 and an IPv6 one) are probed at once.
	got := make([]netip.Addr, len(c.Ranges))
	errs := make([]error, len(c.Ranges))
	var wg sync.WaitGroup
	for i, r := range c.Ranges {
		wg.Go(func() {
			got[i], errs[i] = alloc.Request(ctx, r.Subnet.String(), c.Requested[i], ipam.UseContainer, nil)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			for _, a := range got {
				if a.IsValid() {
					_ = d.DeleteLease("", a)
				}
			}
			return nil, requestError(err)
		}
	}
	return got, nil
}

// requestError turns the allocator's refusals into CNI errors: an address
// asked for that is held is the caller's to change; a pool with nothing
// left may have addresses again later.
func requestError(err error) error {
	switch {
	case errors.Is(err, ipam.ErrExhausted):
		return types.NewError(types.ErrTryAgainLater, "ipam: "+err.Error(), "")
	case errors.Is(err, ipam.ErrInUse):
		return types.NewError(types.ErrInternal, "ipam: "+err.Error(), "")
	}
	return fmt.Errorf("ipam: %w", err)
}

// vxlanSegmentLink returns the link through which the vxlan plugin's
// network reaches its segment on this host: its bridge (bridge mode) or
// its vxlan link (macvlan mode), or those of the Docker network whose
// segment it joined, as package fabric names them.
func vxlanSegmentLink(ctx context.Context, args *skel.CmdArgs) (string, error) {
	s, err := open(args)
	if err != nil {
		return "", err
	}
	defer s.close()
	spec, err := s.spec(ctx, false)
	if err != nil {
		return "", err
	}
	seg, err := s.segmentOf(ctx, spec)
	if err != nil {
		return "", err
	}
	if seg != nil {
		spec = seg.on(spec)
	}
	return spec.SegmentLink(), nil
}

// printIPAMResult prints the addresses, one per range, with the ranges'
// gateways and the configuration's routes.
func printIPAMResult(c *ipamConf, addrs []netip.Addr) error {
	r := &current.Result{CNIVersion: current.ImplementedSpecVersion, Routes: c.Routes}
	for _, a := range addrs {
		i := c.rangeOf(a)
		if i < 0 {
			return fmt.Errorf("ipam: leased address %s is in none of the subnets %s", a, c.subnets())
		}
		rg := c.Ranges[i]
		r.IPs = append(r.IPs, &current.IPConfig{
			Address: net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(rg.Subnet.Bits(), a.BitLen())},
			Gateway: rg.Gateway.AsSlice(),
		})
	}
	v := c.CNIVersion
	if v == "" {
		v = current.ImplementedSpecVersion
	}
	return types.PrintResult(r, v)
}

// ipamDelete releases the attachment's addresses. An attachment, or a
// network, with none is not an error.
func ipamDelete(args *skel.CmdArgs) error {
	return ipamCollect(args, func(l heldLease) bool { return l.ContainerID == args.ContainerID && l.IfName == args.IfName })
}

// ipamGC releases the addresses of the attachments the runtime does not
// list as valid.
func ipamGC(args *skel.CmdArgs) error {
	var conf types.PluginConf
	if err := json.Unmarshal(args.StdinData, &conf); err != nil {
		return invalidConfig("network configuration: %v", err)
	}
	return ipamCollect(args, func(l heldLease) bool {
		return !slices.ContainsFunc(conf.ValidAttachments, func(a types.GCAttachment) bool {
			return a.ContainerID == l.ContainerID && a.IfName == l.IfName
		})
	})
}

// ipamCollect removes the network's leases that drop says to.
func ipamCollect(args *skel.CmdArgs, drop func(heldLease) bool) error {
	c, err := parseIPAMConfig(args.StdinData, "")
	if err != nil {
		return err
	}
	d, err := openLeases(c.networkDir(), false)
	if err != nil || d == nil {
		return err
	}
	defer d.close()
	leases, err := d.read()
	if err != nil {
		return err
	}
	for _, l := range leases {
		if drop(l) {
			if err := d.DeleteLease("", l.Addr); err != nil {
				return err
			}
		}
	}
	return nil
}

// ipamCheck reports whether the attachment holds its addresses: a lease
// in every range.
func ipamCheck(args *skel.CmdArgs) error {
	c, err := parseIPAMConfig(args.StdinData, "")
	if err != nil {
		return err
	}
	d, err := openLeases(c.networkDir(), false)
	if err != nil {
		return err
	}
	var held []heldLease
	if d != nil {
		defer d.close()
		leases, err := d.read()
		if err != nil {
			return err
		}
		held = of(leases, args.ContainerID, args.IfName)
	}
	for _, r := range c.Ranges {
		if !slices.ContainsFunc(held, func(l heldLease) bool { return r.Subnet.Contains(l.Addr) }) {
			return fmt.Errorf("ipam check: container %s interface %s holds no address of %s in network %s on this host (%s)",
				args.ContainerID, args.IfName, r.Subnet, c.Network, c.networkDir())
		}
	}
	return nil
}
