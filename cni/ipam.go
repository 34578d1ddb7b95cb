package cni

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// delegateIPAMAdd runs the IPAM plugin's ADD through libcni's invoke (the
// plugin is found on CNI_PATH) and returns its result; an error also when
// the plugin gave no address.
func delegateIPAMAdd(ctx context.Context, plugin string, stdin []byte) (*current.Result, error) {
	r, err := invoke.DelegateAdd(ctx, plugin, stdin, nil)
	if err != nil {
		return nil, fmt.Errorf("ipam %s: %w", plugin, err)
	}
	result, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("ipam %s result: %w", plugin, err)
	}
	if len(result.IPs) == 0 {
		return result, fmt.Errorf("ipam %s: no addresses", plugin)
	}
	return result, nil
}

// ipamDel releases the attachment's address, if the network has IPAM.
func (s *session) ipamDel(ctx context.Context) error {
	if s.conf.IPAM.Type == "" {
		return nil
	}
	if err := invoke.DelegateDel(ctx, s.conf.IPAM.Type, s.args.StdinData, nil); err != nil {
		return fmt.Errorf("ipam %s: %w", s.conf.IPAM.Type, err)
	}
	return nil
}

// ipamSupports reports whether the network has an IPAM plugin that
// supports the CNI version (GC and STATUS came with 1.1.0; older plugins,
// such as Debian 12's, refuse them).
func (s *session) ipamSupports(ctx context.Context, cniVersion string) (bool, error) {
	if s.conf.IPAM.Type == "" {
		return false, nil
	}
	path, err := invoke.FindInPath(s.conf.IPAM.Type, filepath.SplitList(s.args.Path))
	if err != nil {
		return false, fmt.Errorf("ipam %s: %w", s.conf.IPAM.Type, err)
	}
	info, err := invoke.GetVersionInfo(ctx, path, nil)
	if err != nil {
		return false, fmt.Errorf("ipam %s: %w", s.conf.IPAM.Type, err)
	}
	return slices.Contains(info.SupportedVersions(), cniVersion), nil
}

// gatewaysOf returns the IPAM result's gateways with their addresses'
// prefix lengths (for the HostGateway option).
func gatewaysOf(r *current.Result) []netip.Prefix {
	var out []netip.Prefix
	for _, ip := range r.IPs {
		gw, ok := netip.AddrFromSlice(ip.Gateway)
		if !ok {
			continue
		}
		ones, _ := ip.Address.Mask.Size()
		out = append(out, netip.PrefixFrom(gw.Unmap(), ones))
	}
	return out
}

// firstIPv4 returns the result's first IPv4 address, which the
// container's MAC is made from.
func firstIPv4(r *current.Result) netip.Prefix {
	for _, ip := range r.IPs {
		if p, ok := prefixOf(ip.Address); ok && p.Addr().Is4() {
			return p
		}
	}
	return netip.Prefix{}
}

func prefixOf(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
