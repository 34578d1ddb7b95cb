// Package cni is the CNI front end of the project: a CNI plugin of network
// type "vxlan" that attaches containers to VXLAN segments with the same
// links, the same network options and the same owner marks as the Docker
// driver (package docker, its peer: neither imports the other), since both
// build on packages fabric (the options and rules) and linuxhost (the
// links), so that Podman, containerd, CRI-O, Kubernetes and Nomad hosts
// share segments with Docker hosts. Command vxlan-cni is its binary.
//
// It is also a CNI IPAM plugin, vxlan-ipam ([IPAMFuncs], command
// vxlan-ipam): package ipam's allocator, which probes the segment before it
// hands out an address, with leases in files per network (a directory
// under /var/lib/cni/vxlan-ipam, a lock file, one file per address).
//
// It speaks CNI 0.3.0 to 1.1.0: ADD, DEL, CHECK, VERSION, GC and STATUS.
// Every key of the network configuration that CNI does not define is a
// network option of package fabric's option table; addresses come from the
// IPAM plugin the configuration names under "ipam".
//
// State: per network, a directory under /var/lib/cni/vxlan (named by 12
// hex digits of the network's ID) holds a lock file, taken by every call
// of the network on this host, and one JSON record per container
// attachment.
//
// Lifecycle: the first ADD of a network on a host makes its links (vxlan
// link, and bridge in bridge mode) unless a Docker network already has the
// VNI there, whose segment it then joins; each ADD records the attachment
// before it makes the container's interface, and calls IPAM once the
// links exist (an IPAM plugin may probe the segment through them). DEL deletes the interface and
// the record, and the network's links with the last record; GC does the
// same for attachments the runtime no longer lists. Each call waits until
// the links it released are gone from the kernel before it answers.
package cni

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

// supportedVersions are the CNI versions whose results can carry the
// interfaces this plugin makes (0.1.0 and 0.2.0 results cannot).
var supportedVersions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// Funcs returns the plugin's commands (ADD, DEL, CHECK, GC and STATUS)
// for skel.PluginMainFuncs; each reads the network configuration and
// dials netlink in the calling process's namespace.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{
		Add:    withSession(cmdAdd),
		Del:    withSession(cmdDel),
		Check:  withSession(cmdCheck),
		GC:     withSession(cmdGC),
		Status: withSession(cmdStatus),
	}
}

// Versions returns the CNI versions the plugin supports (0.3.0 to 1.1.0),
// for skel.PluginMainFuncs and VERSION.
func Versions() version.PluginInfo { return supportedVersions }

// session is one call of the plugin: its configuration, the network's
// spec and the host's netlink connection.
type session struct {
	args *skel.CmdArgs
	conf *netConf
	conn *rtlink.Conn
	host *linuxhost.Host
}

// open reads the configuration and dials netlink in the host's namespace.
func open(args *skel.CmdArgs) (*session, error) {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return nil, err
	}
	if err := checkKind(conf); err != nil {
		return nil, err
	}
	conn, err := rtlink.Dial()
	if err != nil {
		return nil, err
	}
	// The VTEP filter is on unless the network's VtepFilter key says false:
	// the CNI plugin has no daemon flag to set another default.
	return &session{args: args, conf: conf, conn: conn, host: linuxhost.New(conn, linuxhost.WithVTEPFilter(true))}, nil
}

func (s *session) close() {
	s.host.Close()
	s.conn.Close()
}

// withSession makes a CNI command of cmd: it runs with the call's session,
// and its error carries the CNI specification's code (cniError).
func withSession(cmd func(context.Context, *session) error) func(*skel.CmdArgs) error {
	return func(args *skel.CmdArgs) error {
		s, err := open(args)
		if err != nil {
			return cniError(err)
		}
		defer s.close()
		return cniError(cmd(context.Background(), s))
	}
}

// checkKind refuses networks other than vxlan ones: the CNI plugin makes
// no parent (host interface) networks; CNI's macvlan plugin does.
func checkKind(conf *netConf) error {
	spec, err := fabric.ParseOptions(conf.Options)
	if err != nil {
		return err
	}
	if spec.Kind != fabric.KindParent {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(conf.Options)) {
		return &fabric.OptionError{
			Option:   k,
			Value:    conf.Options[k],
			Problem:  "the CNI plugin makes vxlan networks only (for a macvlan network on a host interface, use CNI's macvlan plugin)",
			Accepted: "networks with VxlanId",
		}
	}
	vni, _ := fabric.LookupOption("VxlanId")
	return &fabric.OptionError{Option: "VxlanId", Problem: "missing", Accepted: vni.Accepted}
}

// spec resolves the network's spec on this host (its gateways, from IPAM,
// are set by ADD when HostGateway puts them on the bridge); forDelete
// resolves a network whose VTEP device is gone.
// A VTEP device that is not on this host (yet) is worth another try.
func (s *session) spec(ctx context.Context, forDelete bool) (*fabric.NetworkSpec, error) {
	spec, err := fabric.Resolve(ctx, s.host, s.conf.Options, fabric.ResolveConfig{
		ID:            networkID(s.conf.Name),
		Scope:         fabric.ScopeGlobal,
		MissingVTEPOK: forDelete,
	})
	if errors.Is(err, vxlan.ErrNotFound) {
		return nil, &tryAgainError{err}
	}
	return spec, err
}

// stateID is the name of the network's state directory: the 12 hex digits
// of its ID.
func (s *session) stateID() string { return networkID(s.conf.Name)[:12] }

func (s *session) endpointID() string { return endpointID(s.args.ContainerID, s.args.IfName) }

// settle returns once the links this call released are gone from the
// kernel: linuxhost.Host deletes them in the background, and this process ends
// as soon as it answers, so it waits for them before it does (and before
// the network's lock is released, so that the next call finds them gone).
func (s *session) settle(ctx context.Context) error { return s.host.Drain(ctx) }

// unlock settles the links and releases the network's lock.
func (s *session) unlock(ctx context.Context, st *netState) {
	_ = s.settle(context.WithoutCancel(ctx))
	st.unlock()
}

// lockForDelete resolves the network's spec for taking it down (its VTEP
// device may be gone) and locks its state.
func (s *session) lockForDelete(ctx context.Context) (*fabric.NetworkSpec, *netState, error) {
	spec, err := s.spec(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	st, err := lockNetwork(s.stateID())
	if err != nil {
		return nil, nil, err
	}
	return spec, st, nil
}

// deleteNetworkIfUnused deletes the network's links once no attachment on
// this host has a record.
func (s *session) deleteNetworkIfUnused(ctx context.Context, st *netState, spec *fabric.NetworkSpec) error {
	recs, err := st.records()
	if err != nil {
		return err
	}
	if len(recs) > 0 {
		return nil
	}
	return s.host.DeleteNetwork(ctx, spec, false)
}
