package cni

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// cmdCheck reports whether an attachment is as ADD made it: the network's
// links, the host end, the container's interface with its MTU, addresses
// and routes, and IPAM's own check.
func cmdCheck(ctx context.Context, s *session) error {
	args := s.args
	if err := version.ParsePrevResult(&s.conf.PluginConf); err != nil {
		return err
	}
	if s.conf.PrevResult == nil {
		return fmt.Errorf("check: no prevResult")
	}
	prev, err := current.NewResultFromResult(s.conf.PrevResult)
	if err != nil {
		return fmt.Errorf("check: prevResult: %w", err)
	}
	if s.conf.IPAM.Type != "" {
		if err := invoke.DelegateCheck(ctx, s.conf.IPAM.Type, args.StdinData, nil); err != nil {
			return fmt.Errorf("ipam %s: %w", s.conf.IPAM.Type, err)
		}
	}
	spec, err := s.spec(ctx, false)
	if err != nil {
		return err
	}
	rec, err := readRecord(s.stateID(), s.endpointID())
	if err != nil {
		return err
	}
	if rec == nil {
		return fmt.Errorf("check: container %s interface %s is not attached to network %s on this host", args.ContainerID, args.IfName, s.conf.Name)
	}
	spec = rec.attachedTo(spec)
	if err := s.host.CheckNetwork(ctx, spec, []*fabric.Endpoint{fabric.NewEndpoint(s.endpointID(), netip.Prefix{})}).Err(); err != nil {
		return err
	}
	ctr, err := openContainer(args.Netns)
	if err != nil {
		return err
	}
	defer ctr.close()
	return ctr.check(ctx, args.IfName, containerKind(spec), spec.ContainerMTU, prev)
}
