// Package cni is a CNI plugin of network type "vxlan": it attaches
// containers to VXLAN segments with the same links, the same network
// options and the same owner marks as the Docker driver of this module
// (package plugin, on the typed API of package vxlan and the netlink of
// package rtlink), so that Podman, containerd, CRI-O, Kubernetes and Nomad
// hosts share segments with Docker hosts. Command vxlan-cni is its binary.
//
// It speaks CNI 0.3.0 to 1.1.0: ADD, DEL, CHECK, VERSION, GC and STATUS.
// Every key of the network configuration that CNI does not define is a
// network option of package plugin's option table; addresses come from the
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
// before it makes the container's interface. DEL deletes the interface and
// the record, and the network's links with the last record; GC does the
// same for attachments the runtime no longer lists. Each call waits until
// the links it released are gone from the kernel before it answers.
package cni

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/TrilliumIT/docker-vxlan-plugin/plugin"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ipam"
)

// supportedVersions are the CNI versions whose results can carry the
// interfaces this plugin makes (0.1.0 and 0.2.0 results cannot).
var supportedVersions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// Funcs returns the plugin's commands (ADD, DEL, CHECK, GC and STATUS)
// for skel.PluginMainFuncs; each reads the network configuration and
// dials netlink in the calling process's namespace.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: withSession(cmdAdd), Del: withSession(cmdDel), Check: withSession(cmdCheck), GC: withSession(cmdGC), Status: withSession(cmdStatus)}
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
	host *plugin.LinuxHost
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
	return &session{args: args, conf: conf, conn: conn, host: plugin.NewLinuxHost(conn)}, nil
}

func (s *session) close() { s.conn.Close() }

// withSession makes a CNI command of cmd: it runs with the call's session.
func withSession(cmd func(context.Context, *session) error) func(*skel.CmdArgs) error {
	return func(args *skel.CmdArgs) error {
		s, err := open(args)
		if err != nil {
			return err
		}
		defer s.close()
		return cmd(context.Background(), s)
	}
}

// checkKind refuses networks other than vxlan ones: the CNI plugin makes
// no parent (host interface) networks; CNI's macvlan plugin does.
func checkKind(conf *netConf) error {
	spec, err := plugin.ParseOptions(conf.Options)
	if err != nil {
		return err
	}
	if spec.Kind != plugin.KindParent {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(conf.Options)) {
		return &plugin.OptionError{Option: k, Value: conf.Options[k], Problem: "the CNI plugin makes vxlan networks only (for a macvlan network on a host interface, use CNI's macvlan plugin)", Accepted: "networks with VxlanId"}
	}
	return &plugin.OptionError{Option: "VxlanId", Problem: "missing", Accepted: acceptedOf("VxlanId")}
}

// acceptedOf returns the accepted values of an option of the table.
func acceptedOf(name string) string {
	for _, o := range plugin.Options() {
		if o.Name == name {
			return o.Accepted
		}
	}
	return ""
}

// spec resolves the network's spec on this host (its gateways, from IPAM,
// are set by ADD when HostGateway puts them on the bridge); forDelete
// resolves a network whose VTEP device is gone.
func (s *session) spec(ctx context.Context, forDelete bool) (*plugin.NetworkSpec, error) {
	return plugin.Resolve(ctx, s.host, s.conf.Options, plugin.ResolveConfig{
		ID:            networkID(s.conf.Name),
		Scope:         plugin.ScopeGlobal,
		MissingVTEPOK: forDelete,
	})
}

// stateID is the name of the network's state directory: the 12 hex digits
// of its ID.
func (s *session) stateID() string { return networkID(s.conf.Name)[:12] }

func (s *session) endpointID() string { return endpointID(s.args.ContainerID, s.args.IfName) }

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

// ipamCall is an IPAM ADD running in the background.
type ipamCall struct {
	done   chan struct{}
	result *current.Result
	err    error
}

// startIPAMAdd runs the IPAM plugin's ADD in the background.
func startIPAMAdd(plugin string, stdin []byte) *ipamCall {
	c := &ipamCall{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		r, err := ipam.ExecAdd(plugin, stdin)
		if err != nil {
			c.err = fmt.Errorf("ipam %s: %w", plugin, err)
			return
		}
		if c.result, err = current.NewResultFromResult(r); err != nil {
			c.err = fmt.Errorf("ipam %s result: %w", plugin, err)
			return
		}
		if len(c.result.IPs) == 0 {
			c.err = fmt.Errorf("ipam %s: no addresses", plugin)
		}
	}()
	return c
}

// wait returns the IPAM result once there is one; an error also when the
// plugin gave no address.
func (c *ipamCall) wait() (*current.Result, error) {
	<-c.done
	return c.result, c.err
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

// settle returns once the links this call released are gone from the
// kernel: LinuxHost deletes them in the background, and this process ends
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
func (s *session) lockForDelete(ctx context.Context) (*plugin.NetworkSpec, *netState, error) {
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
func (s *session) deleteNetworkIfUnused(ctx context.Context, st *netState, spec *plugin.NetworkSpec) error {
	recs, err := st.records()
	if err != nil {
		return err
	}
	if len(recs) > 0 {
		return nil
	}
	return s.host.DeleteNetwork(ctx, spec, false)
}

// cmdDel detaches a container; what is already gone is not an error. The
// network's links go with the last attachment on this host.
func cmdDel(ctx context.Context, s *session) error {
	// IPAM releases the address while the links are deleted; both are
	// waited for.
	ipamDone := make(chan error, 1)
	go func() { ipamDone <- s.ipamDel() }()
	if err := s.deleteAttachment(ctx); err != nil {
		<-ipamDone
		return err
	}
	return <-ipamDone
}

// ipamDel releases the attachment's address, if the network has IPAM.
func (s *session) ipamDel() error {
	if s.conf.IPAM.Type == "" {
		return nil
	}
	if err := ipam.ExecDel(s.conf.IPAM.Type, s.args.StdinData); err != nil {
		return fmt.Errorf("ipam %s: %w", s.conf.IPAM.Type, err)
	}
	return nil
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
func (s *session) deleteEndpoint(ctx context.Context, st *netState, spec *plugin.NetworkSpec, rec record) error {
	attach := rec.attachedTo(spec)
	var err error
	if attach.Kind == plugin.KindBridge {
		err = s.host.DeleteEndpoint(ctx, attach, plugin.NewEndpoint(rec.EndpointID, netip.Prefix{}))
	}
	if (attach.Kind != plugin.KindBridge || errors.Is(err, rtlink.ErrWrongKind)) && rec.Netns != "" {
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
			if _, lerr := s.conn.LinkByName(ctx, plugin.NewEndpoint(rec.EndpointID, netip.Prefix{}).HostIf); errors.Is(lerr, rtlink.ErrNotFound) {
				err = nil
			}
		}
	}
	if err != nil {
		return err
	}
	return st.remove(rec.EndpointID)
}

// containerKind is the link kind of the containers' interfaces.
func containerKind(spec *plugin.NetworkSpec) string {
	if spec.Kind == plugin.KindMacvlan {
		return "macvlan"
	}
	return "veth"
}

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
		if err := ipam.ExecCheck(s.conf.IPAM.Type, args.StdinData); err != nil {
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
	if err := s.host.CheckNetwork(ctx, spec); err != nil {
		return err
	}
	if err := s.host.CheckEndpoint(ctx, spec, plugin.NewEndpoint(s.endpointID(), netip.Prefix{})); err != nil {
		return err
	}
	ctr, err := openContainer(args.Netns)
	if err != nil {
		return err
	}
	defer ctr.close()
	return ctr.check(ctx, args.IfName, containerKind(spec), spec.ContainerMTU, prev)
}

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

// cmdStatus reports the plugin ready when it can reach the kernel's
// netlink and the IPAM plugin, if it knows STATUS, says it is ready.
func cmdStatus(ctx context.Context, s *session) error {
	if _, err := s.conn.Links(ctx, "vxlan"); err != nil {
		return err
	}
	if ok, err := s.ipamSupports(ctx, "1.1.0"); !ok || err != nil {
		return err
	}
	return ipam.ExecStatus(s.conf.IPAM.Type, s.args.StdinData)
}
