package cni

import (
	"context"
	"errors"
	"fmt"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/undo"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// cmdAdd attaches a container: the network's links (on the first ADD on
// this host), an address from IPAM, and the container's interface. On
// error, what was done is undone, newest first, under the network's lock.
func cmdAdd(ctx context.Context, s *session) (err error) {
	if s.conf.IPAM.Type == "" {
		return &configError{fmt.Errorf("ipam: no IPAM plugin named (the \"type\" of \"ipam\", such as host-local, static or dhcp)")}
	}
	st, err := lockNetwork(s.stateID())
	if err != nil {
		return err
	}
	defer s.unlock(ctx, st)
	a := &addition{session: s, st: st}
	defer a.undo.OnError(ctx, &err)
	if err := a.writeRecord(); err != nil {
		return err
	}
	// IPAM runs once the network's links exist: an IPAM plugin that
	// probes the segment (vxlan-ipam) probes through them.
	spec, attach, err := a.makeNetwork(ctx)
	if err != nil {
		return err
	}
	result, err := a.ipamAdd(ctx)
	if err != nil {
		return err
	}
	if err := a.hostGateways(ctx, spec, attach, result); err != nil {
		return err
	}
	ep, err := a.makeInterface(ctx, attach, result)
	if err != nil {
		return err
	}
	return s.printResult(result, attach, ep)
}

// addition is one ADD under way, holding the network's lock: the
// attachment's record, and what to undo if the ADD fails.
type addition struct {
	*session
	st  *netState
	rec record
	// prev is the record of an earlier ADD of this attachment, or nil.
	prev *record
	// undo takes back what the ADD did if it fails.
	undo undo.Steps
}

// writeRecord writes the attachment's record. The record comes first:
// whatever is made after it is removed by a DEL even if this process dies
// half way. A record of an earlier ADD of this attachment stays as it is:
// its DEL removes it.
func (a *addition) writeRecord() error {
	args := a.args
	a.rec = record{ContainerID: args.ContainerID, IfName: args.IfName, Netns: args.Netns, EndpointID: a.endpointID()}
	prev, err := a.st.get(a.rec.EndpointID)
	if err != nil {
		return err
	}
	a.prev = prev
	if prev != nil {
		return nil
	}
	if err := a.st.put(a.rec); err != nil {
		return err
	}
	a.undo.Add(func(context.Context) { _ = a.st.remove(a.rec.EndpointID) })
	return nil
}

// ipamAdd gets the attachment's addresses from IPAM; if the ADD fails
// later, they are released.
func (a *addition) ipamAdd(ctx context.Context) (*current.Result, error) {
	result, err := delegateIPAMAdd(ctx, a.conf.IPAM.Type, a.args.StdinData)
	if result != nil {
		a.undo.Add(func(ctx context.Context) { _ = a.ipamDel(ctx) })
	}
	return result, err
}

// makeNetwork resolves the network's spec and makes its links, or joins
// the segment of the Docker network that has the VNI on this host. It
// returns the network's spec and the spec of the links the container is
// attached to (the same, or the joined segment's).
func (a *addition) makeNetwork(ctx context.Context) (spec, attach *fabric.NetworkSpec, err error) {
	if spec, err = a.spec(ctx, false); err != nil {
		return nil, nil, err
	}
	if err := a.host.CreateNetwork(ctx, spec); err != nil {
		seg, err := a.joinSegment(ctx, spec, err)
		if err != nil {
			return nil, nil, err
		}
		a.rec.Segment = seg
		if err := a.st.put(a.rec); err != nil { // DEL must find the same links
			return nil, nil, err
		}
		return spec, seg.on(spec), nil
	}
	if a.prev == nil {
		a.undo.Add(func(ctx context.Context) {
			// Without this attachment's record, the network may be unused.
			if a.st.remove(a.rec.EndpointID) == nil {
				_ = a.deleteNetworkIfUnused(ctx, a.st, spec)
			}
		})
	}
	return spec, spec, nil
}

// hostGateways puts IPAM's gateways on the network's bridge when
// HostGateway is on; on a joined Docker network's segment, it checks that
// the segment's bridge carries them.
func (a *addition) hostGateways(ctx context.Context, spec, attach *fabric.NetworkSpec, result *current.Result) error {
	if !spec.HostGateway {
		return nil
	}
	spec.Gateways = gatewaysOf(result)
	if attach == spec {
		return a.host.CreateNetwork(ctx, spec)
	}
	joined := *attach
	joined.Gateways, joined.Peers = spec.Gateways, nil
	if err := a.host.CheckNetwork(ctx, &joined, nil).Err(); err != nil {
		return fmt.Errorf("VNI %d is on this host the segment of Docker network %.12s, which this network cannot join: %w",
			spec.VXLAN.VNI, a.rec.Segment.NetworkID, err)
	}
	return nil
}

// makeInterface makes the container's interface on the links of attach
// and gives it the IPAM result's addresses and routes.
func (a *addition) makeInterface(ctx context.Context, attach *fabric.NetworkSpec, result *current.Result) (*fabric.Endpoint, error) {
	args := a.args
	ep := fabric.NewEndpoint(a.rec.EndpointID, firstIPv4(result))
	// A retried ADD finds the links of the failed one: remove them first.
	if err := a.host.DeleteEndpoint(ctx, attach, ep); err != nil {
		return nil, err
	}
	ctr, err := openContainer(args.Netns)
	if err != nil {
		return nil, err
	}
	defer ctr.close()
	if err := a.host.CreateEndpoint(ctx, attach, ep, &linuxhost.ContainerNS{NetNS: ctr.ns, IfName: args.IfName}); err != nil {
		return nil, fmt.Errorf("container interface %s in %s: %w", args.IfName, args.Netns, err)
	}
	a.undo.Add(func(ctx context.Context) { _ = a.host.DeleteEndpoint(ctx, attach, ep) })
	if err := ctr.configure(ctx, args.IfName, result); err != nil {
		return nil, err
	}
	return ep, nil
}

// printResult completes IPAM's result with the attachment's interfaces
// (the addresses on the container's, the last) and, when IPAM gave no DNS,
// the configuration's, as CNI's bridge plugin does; then prints it in the
// configuration's CNI version.
func (s *session) printResult(result *current.Result, attach *fabric.NetworkSpec, ep *fabric.Endpoint) error {
	if len(result.DNS.Nameservers) == 0 && len(result.DNS.Search) == 0 {
		result.DNS = s.conf.DNS
	}
	result.Interfaces = interfacesOf(attach, ep, s.args)
	for _, ip := range result.IPs {
		ip.Interface = current.Int(len(result.Interfaces) - 1)
	}
	return types.PrintResult(result, s.conf.CNIVersion)
}

// joinSegment decides what to do when the network's links cannot be made
// because a vxlan link has the VNI and port: if it is a Docker network's of
// the same mode and settings, the container joins that network's segment;
// otherwise the error stands (createErr, which names VxlanId and the link).
func (s *session) joinSegment(ctx context.Context, spec *fabric.NetworkSpec, createErr error) (*segment, error) {
	if !errors.Is(createErr, rtlink.ErrExists) {
		return nil, createErr
	}
	seg, err := s.segmentOf(ctx, spec)
	if err != nil || seg == nil || isCNINetwork(seg.NetworkID) {
		// Another CNI network's segment is not joined: its links would go
		// with its own last container, under this one's feet.
		return nil, createErr
	}
	if seg.Kind != spec.Kind {
		return nil, &fabric.OptionError{
			Option: "mode",
			Value:  string(spec.Kind),
			Problem: fmt.Sprintf(
				"VNI %d is on this host the segment of Docker network %.12s, whose mode is %s; a network joining it needs the same",
				spec.VXLAN.VNI,
				seg.NetworkID,
				seg.Kind,
			),
			Accepted: string(seg.Kind),
		}
	}
	// The segment's links and settings must be this network's; its FDB
	// peers are the Docker network's own.
	joined := seg.on(spec)
	joined.Peers = nil
	if err := s.host.CheckNetwork(ctx, joined, nil).Err(); err != nil {
		return nil, fmt.Errorf(
			"VNI %d is on this host the segment of Docker network %.12s, which this network cannot join: %w",
			spec.VXLAN.VNI,
			seg.NetworkID,
			err,
		)
	}
	return seg, nil
}

// interfacesOf lists the interfaces of an attachment for the result: the
// network's bridge (bridge mode) or vxlan link (macvlan mode), the host
// end of the veth (bridge mode), and the container's interface, last,
// with the MTU the plugin gives containers.
func interfacesOf(spec *fabric.NetworkSpec, ep *fabric.Endpoint, args *skel.CmdArgs) []*current.Interface {
	var out []*current.Interface
	if spec.Kind == fabric.KindBridge {
		out = append(out, &current.Interface{Name: spec.Bridge.Name}, &current.Interface{Name: ep.HostIf})
	} else {
		out = append(out, &current.Interface{Name: spec.VXLAN.Name})
	}
	return append(out, &current.Interface{Name: args.IfName, Mac: ep.MAC.String(), Mtu: spec.ContainerMTU, Sandbox: args.Netns})
}
