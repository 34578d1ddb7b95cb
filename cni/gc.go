package cni

import (
	"context"
	"slices"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
)

// cmdGC removes the attachments whose records are not among the valid
// ones the runtime lists, and the network's links when none is left; then
// IPAM collects its own, if it knows GC.
func cmdGC(ctx context.Context, s *session) error {
	args := s.args
	spec, st, err := s.lockForDelete(ctx)
	if err != nil {
		return err
	}
	recs, err := st.records()
	if err == nil {
		for _, rec := range recs {
			valid := slices.ContainsFunc(s.conf.ValidAttachments, func(a types.GCAttachment) bool {
				return a.ContainerID == rec.ContainerID && a.IfName == rec.IfName
			})
			if !valid {
				if err = s.deleteEndpoint(ctx, st, spec, rec); err != nil {
					break
				}
			}
		}
	}
	if err == nil {
		err = s.deleteNetworkIfUnused(ctx, st, spec)
	}
	if err == nil {
		err = s.settle(ctx)
	}
	s.unlock(ctx, st)
	if err != nil {
		return err
	}
	if ok, err := s.ipamSupports(ctx, "1.1.0"); !ok || err != nil {
		return err
	}
	return invoke.DelegateGC(ctx, s.conf.IPAM.Type, args.StdinData, nil)
}
