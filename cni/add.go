package cni

import (
	"context"
	"errors"
	"fmt"

	"github.com/TrilliumIT/docker-vxlan-plugin/plugin"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ipam"
)

// cmdAdd attaches a container: the network's links (on the first ADD on
// this host), an address from IPAM, and the container's interface.
func cmdAdd(ctx context.Context, s *session) (err error) {
	args := s.args
	if s.conf.IPAM.Type == "" {
		return fmt.Errorf("ipam: no IPAM plugin named (the \"type\" of \"ipam\", such as host-local, static or dhcp)")
	}
	st, err := lockNetwork(s.stateID())
	if err != nil {
		return err
	}
	defer s.unlock(ctx, st)
	// On error, what was done is undone, newest first, under the lock.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	// The record comes first: whatever is made after it is removed by a
	// DEL even if this process dies half way. A record of an earlier ADD
	// of this attachment stays as it is: its DEL removes it.
	rec := record{ContainerID: args.ContainerID, IfName: args.IfName, Netns: args.Netns, EndpointID: s.endpointID()}
	prev, err := st.get(rec.EndpointID)
	if err != nil {
		return err
	}
	if prev == nil {
		if err := st.put(rec); err != nil {
			return err
		}
		undo = append(undo, func() { _ = st.remove(rec.EndpointID) })
	}

	// IPAM runs while the network's links are made, unless the gateways
	// it returns go on the bridge (HostGateway).
	call := startIPAMAdd(s.conf.IPAM.Type, args.StdinData)
	undo = append(undo, func() {
		if _, err := call.wait(); err == nil {
			_ = ipam.ExecDel(s.conf.IPAM.Type, args.StdinData)
		}
	})
	spec, err := s.spec(ctx, false)
	if err != nil {
		return err
	}
	var result *current.Result
	if spec.HostGateway {
		if result, err = call.wait(); err != nil {
			return err
		}
		spec.Gateways = gatewaysOf(result)
	}
	// attach is the network the container is attached to: this one, or
	// the Docker network that has the VNI on this host.
	attach := spec
	if err := s.host.CreateNetwork(ctx, spec); err != nil {
		seg, err := s.joinSegment(ctx, spec, err)
		if err != nil {
			return err
		}
		attach, rec.Segment = seg.On(spec), seg
		if err := st.put(rec); err != nil { // DEL must find the same links
			return err
		}
	} else if prev == nil {
		undo = append(undo, func() {
			// Without this attachment's record, the network may be unused.
			if st.remove(rec.EndpointID) == nil {
				_ = s.deleteNetworkIfUnused(context.Background(), st, spec)
			}
		})
	}
	if result == nil {
		if result, err = call.wait(); err != nil {
			return err
		}
	}

	ep := plugin.NewEndpoint(rec.EndpointID, firstIPv4(result))
	// A retried ADD finds the links of the failed one: remove them first.
	if err := s.host.DeleteEndpoint(ctx, attach, ep); err != nil {
		return err
	}
	ctr, err := openContainer(args.Netns)
	if err != nil {
		return err
	}
	defer ctr.close()
	if err := s.host.CreateEndpointIn(ctx, attach, ep, ctr.ns, args.IfName); err != nil {
		return fmt.Errorf("container interface %s in %s: %w", args.IfName, args.Netns, err)
	}
	undo = append(undo, func() { _ = s.host.DeleteEndpoint(context.Background(), attach, ep) })
	if err := ctr.configure(ctx, args.IfName, result); err != nil {
		return err
	}

	if len(result.DNS.Nameservers) == 0 && len(result.DNS.Search) == 0 {
		result.DNS = s.conf.DNS // the configuration's, as CNI's bridge plugin does
	}
	result.Interfaces = interfacesOf(attach, ep, args)
	for _, ip := range result.IPs {
		ip.Interface = current.Int(len(result.Interfaces) - 1)
	}
	return types.PrintResult(result, s.conf.CNIVersion)
}

// joinSegment decides what to do when the network's links cannot be made
// because a vxlan link has the VNI and port: if it is a Docker network's of
// the same mode and settings, the container joins that network's segment;
// otherwise the error stands (createErr, which names VxlanId and the link).
func (s *session) joinSegment(ctx context.Context, spec *plugin.NetworkSpec, createErr error) (*plugin.Segment, error) {
	if !errors.Is(createErr, rtlink.ErrExists) {
		return nil, createErr
	}
	seg, err := s.host.SegmentOf(ctx, spec)
	if err != nil || seg == nil || isCNINetwork(seg.NetworkID) {
		// Another CNI network's segment is not joined: its links would go
		// with its own last container, under this one's feet.
		return nil, createErr
	}
	if seg.Kind != spec.Kind {
		return nil, &plugin.OptionError{Option: "mode", Value: string(spec.Kind), Problem: fmt.Sprintf("VNI %d is on this host the segment of Docker network %.12s, whose mode is %s; a network joining it needs the same", spec.VXLAN.VNI, seg.NetworkID, seg.Kind), Accepted: string(seg.Kind)}
	}
	if err := s.host.CheckNetwork(ctx, seg.On(spec)); err != nil {
		return nil, fmt.Errorf("VNI %d is on this host the segment of Docker network %.12s, which this network cannot join: %w", spec.VXLAN.VNI, seg.NetworkID, err)
	}
	return seg, nil
}

// interfacesOf lists the interfaces of an attachment for the result: the
// network's bridge (bridge mode) or vxlan link (macvlan mode), the host
// end of the veth (bridge mode), and the container's interface, last,
// with the MTU the plugin gives containers.
func interfacesOf(spec *plugin.NetworkSpec, ep *plugin.Endpoint, args *skel.CmdArgs) []*current.Interface {
	var out []*current.Interface
	if spec.Kind == plugin.KindBridge {
		out = append(out, &current.Interface{Name: spec.Bridge.Name}, &current.Interface{Name: ep.HostIf})
	} else {
		out = append(out, &current.Interface{Name: spec.VXLAN.Name})
	}
	return append(out, &current.Interface{Name: args.IfName, Mac: ep.MAC.String(), Mtu: spec.ContainerMTU, Sandbox: args.Netns})
}
