package cni

import (
	"context"
	"errors"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// cmdDel detaches a container; what is already gone is not an error. The
// network's links go with the last attachment on this host.
func cmdDel(ctx context.Context, s *session) error {
	// IPAM releases the address while the links are deleted; both are
	// waited for.
	ipamDone := make(chan error, 1)
	go func() { ipamDone <- s.ipamDel(ctx) }()
	if err := s.deleteAttachment(ctx); err != nil {
		<-ipamDone
		return err
	}
	return <-ipamDone
}

// deleteAttachment deletes the container's interface and its record, and
// the network's links when it was the last attachment on this host.
func (s *session) deleteAttachment(ctx context.Context) error {
	args := s.args
	spec, st, err := s.lockForDelete(ctx)
	if err != nil {
		return err
	}
	defer s.unlock(ctx, st)
	rec, err := st.get(s.endpointID())
	if err != nil {
		return err
	}
	if rec == nil {
		// Deleted already, or never added: the container's interface of
		// that name may be another network's, so only a host end named
		// for this attachment in this network's bridge is deleted.
		rec = &record{ContainerID: args.ContainerID, IfName: args.IfName, EndpointID: s.endpointID()}
	}
	if err := s.deleteEndpoint(ctx, st, spec, *rec); err != nil {
		return err
	}
	if err := s.deleteNetworkIfUnused(ctx, st, spec); err != nil {
		return err
	}
	return s.settle(ctx)
}

// deleteEndpoint deletes an attachment's interface and its record. A veth
// goes through its host end, found by its name and checked to be a port of
// the bridge; when it is not (the bridge was deleted behind the plugin's
// back), through the container's end. A macvlan link is in the container's
// namespace. A namespace that is gone took the interface with it.
func (s *session) deleteEndpoint(ctx context.Context, st *netState, spec *fabric.NetworkSpec, rec record) error {
	attach := rec.attachedTo(spec)
	var err error
	if attach.Kind == fabric.KindBridge {
		err = s.host.DeleteEndpoint(ctx, attach, fabric.NewEndpoint(rec.EndpointID, netip.Prefix{}))
	}
	if (attach.Kind != fabric.KindBridge || errors.Is(err, rtlink.ErrWrongKind)) && rec.Netns != "" {
		ctr, cerr := openContainer(rec.Netns)
		if cerr == nil {
			cerr = ctr.deleteLink(ctx, rec.IfName, containerKind(attach))
			ctr.close()
		}
		switch {
		case errors.Is(cerr, errNoNetns):
		case cerr != nil:
			return cerr
		case err != nil:
			// The container's end is gone now, and the host end with it.
			if _, lerr := s.conn.LinkByName(ctx, fabric.NewEndpoint(rec.EndpointID, netip.Prefix{}).HostIf); errors.Is(lerr, rtlink.ErrNotFound) {
				err = nil
			}
		}
	}
	if err != nil {
		return err
	}
	return st.remove(rec.EndpointID)
}
