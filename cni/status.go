package cni

import (
	"context"

	"github.com/containernetworking/cni/pkg/invoke"
)

// cmdStatus reports the plugin ready when it can reach the kernel's
// netlink and the IPAM plugin, if it knows STATUS, says it is ready; if
// not, the error is CNI's code 50 (plugin not available), or the IPAM
// plugin's own.
func cmdStatus(ctx context.Context, s *session) error {
	if _, err := s.conn.Links(ctx, "vxlan"); err != nil {
		return &notAvailableError{err}
	}
	if ok, err := s.ipamSupports(ctx, "1.1.0"); !ok || err != nil {
		return err
	}
	return invoke.DelegateStatus(ctx, s.conf.IPAM.Type, s.args.StdinData, nil)
}
