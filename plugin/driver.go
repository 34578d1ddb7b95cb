package plugin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Scopes a driver can report.
const (
	ScopeLocal  = "local"
	ScopeGlobal = "global"
)

// Host is what the driver needs from the machine. LinuxHost implements it
// with packages vxlan and rtlink; unit tests fake it.
type Host interface {
	// LinkMTU returns the MTU of the named link, or an error matching
	// vxlan.ErrNotFound.
	LinkMTU(ctx context.Context, name string) (int, error)
	// CreateNetwork makes the network's links, or finds them made by an
	// earlier call for the same network. On error nothing it made remains.
	CreateNetwork(ctx context.Context, spec *NetworkSpec) error
	// DeleteNetwork removes what CreateNetwork made; links it did not make
	// (a reused bridge) are left in place. parentInUse tells that another
	// network still uses the network's parent interface.
	DeleteNetwork(ctx context.Context, spec *NetworkSpec, parentInUse bool) error
	// CreateEndpoint makes the endpoint's interfaces; on error nothing
	// it made remains.
	CreateEndpoint(ctx context.Context, spec *NetworkSpec, ep *Endpoint) error
	// DeleteEndpoint removes them; already gone is not an error.
	DeleteEndpoint(ctx context.Context, spec *NetworkSpec, ep *Endpoint) error
	// OwnedLinks lists the links this plugin made on the host, each with
	// the ID of the network it was made for.
	OwnedLinks(ctx context.Context) ([]OwnedLink, error)
	// DeleteOwnedLink deletes a link OwnedLinks reported.
	DeleteOwnedLink(ctx context.Context, l OwnedLink) error
}

// OwnedLink is a link the plugin made, found on the host.
type OwnedLink struct {
	Name      string
	Kind      string
	NetworkID string
}

// Endpoint is a container's attachment to a network.
type Endpoint struct {
	ID string
	// HostIf is the host end of the veth pair, a port of the bridge;
	// ContainerIf is the end dockerd moves into the container.
	HostIf, ContainerIf string
	MAC                 net.HardwareAddr
	Address             netip.Prefix // IPv4, may be zero
	AddressIPv6         netip.Prefix // may be zero
}

// Config configures a Driver.
type Config struct {
	// Name is the driver's name, used as the prefix of its errors.
	Name string
	// Scope is ScopeLocal or ScopeGlobal.
	Scope string
	// VTEPDevice is the VTEP device of networks whose options name none: a
	// name, or a comma-separated list of which the first existing wins.
	VTEPDevice string
	// Host is the machine the networks are made on.
	Host Host
	// Logger receives the driver's log; nil discards it.
	Logger *slog.Logger
	// Store keeps the networks and endpoints across restarts; nil keeps
	// them in memory only.
	Store *Store
	// CleanOrphans makes Restore delete the links this plugin made for
	// networks its state does not know, instead of only reporting them.
	CleanOrphans bool
}

// Driver implements the network driver: it keeps the networks and
// endpoints, turns requests into NetworkSpecs and Endpoints, and asks the
// Host to make them. Calls on one network are serialised; calls on
// different networks run in parallel.
type Driver struct {
	cfg         Config
	log         *slog.Logger
	vtepDevices []string // Config.VTEPDevice as a list

	mu       sync.Mutex // guards networks, nodes and each network's saved
	networks map[string]*network
	nodes    map[string]NodeDiscoveryData // swarm nodes by address

	saveMu sync.Mutex // serialises saves, so the newest snapshot is written last
}

type network struct {
	mu        sync.Mutex // held for every operation on the network
	spec      *NetworkSpec
	endpoints map[string]*Endpoint
	gone      bool // deleted, or its creation failed
	// saved is the endpoints as last committed, for the state file; it is
	// read under Driver.mu so a save need not take every network's lock.
	saved []*Endpoint
}

// commit records n's endpoints for the state file and saves it. The caller
// holds n.mu.
func (d *Driver) commit(n *network) error {
	eps := make([]*Endpoint, 0, len(n.endpoints))
	for _, ep := range n.endpoints {
		eps = append(eps, ep)
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].ID < eps[j].ID })
	d.mu.Lock()
	n.saved = eps
	d.mu.Unlock()
	return d.save()
}

// save writes the state file, if there is a store.
func (d *Driver) save() error {
	if d.cfg.Store == nil {
		return nil
	}
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	st := &State{Version: StateVersion}
	d.mu.Lock()
	ids := make([]string, 0, len(d.networks))
	for id := range d.networks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if n := d.networks[id]; n.saved != nil {
			st.Networks = append(st.Networks, &NetworkState{Spec: n.spec, Endpoints: n.saved})
		}
	}
	for _, node := range d.nodes {
		st.Nodes = append(st.Nodes, node)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Address < st.Nodes[j].Address })
	d.mu.Unlock()
	return d.cfg.Store.Save(st)
}

// RestoreReport says what Restore found.
type RestoreReport struct {
	Networks int         // networks in the state file
	Failed   []string    // networks whose links could not be brought back, with why
	Orphans  []OwnedLink // links made by this plugin for networks it does not know
	Cleaned  bool        // whether the orphans were deleted
}

// Restore loads the state file and reconciles it with the host: every
// known network's links are adopted where they are and made again where
// they are missing (after a reboot, say), and links this plugin made for
// networks it does not know are reported, or deleted with CleanOrphans. A
// state file that cannot be trusted is an error; a network whose links
// cannot be made is reported and kept.
func (d *Driver) Restore(ctx context.Context) (*RestoreReport, error) {
	rep := &RestoreReport{}
	if d.cfg.Store == nil {
		return rep, nil
	}
	st, err := d.cfg.Store.Load()
	if err != nil {
		return nil, err
	}
	rep.Networks = len(st.Networks)
	d.mu.Lock()
	for _, ns := range st.Networks {
		n := &network{spec: ns.Spec, endpoints: map[string]*Endpoint{}, saved: ns.Endpoints}
		if n.saved == nil {
			n.saved = []*Endpoint{}
		}
		for _, ep := range ns.Endpoints {
			n.endpoints[ep.ID] = ep
		}
		d.networks[ns.Spec.ID] = n
	}
	for _, node := range st.Nodes {
		d.nodes[node.Address] = node
	}
	d.mu.Unlock()
	for _, ns := range st.Networks {
		if err := d.cfg.Host.CreateNetwork(ctx, ns.Spec); err != nil {
			rep.Failed = append(rep.Failed, fmt.Sprintf("%s: %v", shortID(ns.Spec.ID), err))
			d.log.Error("network not restored", "network", shortID(ns.Spec.ID), "error", err)
			continue
		}
		d.log.Info("network restored", "network", shortID(ns.Spec.ID), "kind", ns.Spec.Kind, "endpoints", len(ns.Endpoints))
	}
	owned, err := d.cfg.Host.OwnedLinks(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range owned {
		d.mu.Lock()
		_, known := d.networks[l.NetworkID]
		d.mu.Unlock()
		if known {
			continue
		}
		rep.Orphans = append(rep.Orphans, l)
		if d.cfg.CleanOrphans {
			if err := d.cfg.Host.DeleteOwnedLink(ctx, l); err != nil {
				return nil, err
			}
			d.log.Warn("orphan link deleted", "link", l.Name, "network", shortID(l.NetworkID))
		} else {
			d.log.Warn("orphan link: made by this plugin for a network it does not know; left in place (start with -clean-orphans to delete it)", "link", l.Name, "network", shortID(l.NetworkID))
		}
	}
	rep.Cleaned = d.cfg.CleanOrphans && len(rep.Orphans) > 0
	return rep, nil
}

// NewDriver returns a driver with no networks.
func NewDriver(cfg Config) (*Driver, error) {
	if cfg.Scope != ScopeLocal && cfg.Scope != ScopeGlobal {
		return nil, fmt.Errorf("scope %q: accepted: local, global", cfg.Scope)
	}
	if cfg.Name == "" {
		cfg.Name = "vxlan"
	}
	if cfg.Host == nil {
		return nil, errors.New("no Host")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{cfg: cfg, log: log, networks: map[string]*network{}, nodes: map[string]NodeDiscoveryData{}}
	if cfg.VTEPDevice != "" {
		names, err := parseNameList(cfg.VTEPDevice)
		if err != nil {
			return nil, fmt.Errorf("-vtepdev %q: %w", cfg.VTEPDevice, err)
		}
		d.vtepDevices = names
	}
	return d, nil
}

// Capabilities answers GetCapabilities: the scope given at start.
func (d *Driver) Capabilities() CapabilitiesResponse {
	return CapabilitiesResponse{Scope: d.cfg.Scope, ConnectivityScope: d.cfg.Scope}
}

// ownerMark is the alias of every link the plugin creates for a network;
// only links carrying it are ever deleted.
func ownerMark(networkID string) string { return "docker-vxlan-plugin net=" + networkID }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// genericOptions extracts the user's -o options from a CreateNetwork request.
func genericOptions(opts map[string]any) (map[string]string, error) {
	raw, ok := opts[optGeneric]
	if !ok || raw == nil {
		return map[string]string{}, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an object", optGeneric)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, &OptionError{Option: k, Value: fmt.Sprint(v), Problem: "not a string"}
		}
		out[k] = s
	}
	return out, nil
}

// ipamGateways reads the gateways of a network's pools (CIDR, as dockerd
// sends them in CreateNetwork).
func ipamGateways(family string, data []IPAMData) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, d := range data {
		if d.Gateway == "" {
			continue
		}
		p, err := netip.ParsePrefix(d.Gateway)
		if err != nil {
			return nil, fmt.Errorf("%s gateway %q: not an address in CIDR notation", family, d.Gateway)
		}
		out = append(out, p)
	}
	return out, nil
}

// specFor builds and checks the spec of a network from its options and
// pools. It reads from the host only which interfaces exist and their MTUs.
func (d *Driver) specFor(ctx context.Context, id string, opts map[string]string, ipv4, ipv6 []IPAMData, ipv6Enabled bool) (*NetworkSpec, error) {
	spec, err := ParseOptions(opts)
	if err != nil {
		return nil, err
	}
	spec.ID = id
	if spec.Gateways, err = ipamGateways("IPv4", ipv4); err != nil {
		return nil, err
	}
	if ipv6Enabled {
		gw6, err := ipamGateways("IPv6", ipv6)
		if err != nil {
			return nil, err
		}
		spec.Gateways = append(spec.Gateways, gw6...)
	}
	if spec.Kind == KindParent {
		spec.HostGateway = vxlan.Ptr(false) // the seeds' rule: never on the host
		return spec, d.resolveParent(ctx, spec)
	}
	if spec.Kind == KindMacvlan {
		spec.HostGateway = vxlan.Ptr(false) // seed 004: never on the host
	}
	if spec.HostGateway == nil {
		spec.HostGateway = vxlan.Ptr(d.cfg.Scope == ScopeLocal)
	}
	v := &spec.VXLAN
	if v.Name == "" {
		v.Name = "vx_" + shortID(id)
	}
	if spec.Kind == KindBridge {
		if spec.Bridge.Name == "" {
			spec.Bridge.Name = "br_" + shortID(id)
		}
		if v.Name == spec.Bridge.Name {
			return nil, &OptionError{Option: "bridgeName", Value: spec.Bridge.Name, Problem: "same name as the vxlan interface", Accepted: "a name other than vxlanName"}
		}
	}
	if v.Learning == nil {
		v.Learning = vxlan.Ptr(true)
	}
	v.Alias = ownerMark(id)
	v.Up = true

	// The VTEP device: the first of the network's list, or of the daemon's,
	// that exists here.
	candidates, fromFlag := spec.VTEPCandidates, false
	if len(candidates) == 0 {
		candidates, fromFlag = d.vtepDevices, true
	}
	underlay := 1500 // assumed when no VTEP device is named
	if len(candidates) > 0 {
		v.Device, underlay, err = d.firstLink(ctx, candidates)
		switch {
		case err != nil && fromFlag:
			return nil, fmt.Errorf("VTEP device from the daemon's flag -vtepdev=%s: %v; give the network -o VtepDev", strings.Join(candidates, ","), err)
		case err != nil:
			return nil, &OptionError{Option: "VtepDev", Value: strings.Join(candidates, ","), Problem: err.Error(), Accepted: findOption("VtepDev").Accepted}
		}
	}
	if v.Group.IsMulticast() && v.Device == "" {
		return nil, &OptionError{Option: "Group", Value: v.Group.String(), Problem: "a multicast group needs a VTEP device", Accepted: "VtepDev or the daemon's -vtepdev set, or a unicast Group"}
	}

	// MTU: the VTEP device's less the encapsulation, unless given.
	overhead := 50
	if spec.UnderlayIPv6() {
		overhead = 70
	}
	if v.MTU == 0 {
		v.MTU = underlay - overhead
	}
	spec.ContainerMTU = v.MTU
	if spec.Bridge.MTU != 0 {
		spec.ContainerMTU = spec.Bridge.MTU
	}
	if err := v.Validate(); err != nil {
		var ce *vxlan.ConfigError
		if errors.As(err, &ce) {
			opt, ok := configFieldOption[ce.Field]
			if !ok {
				opt = ce.Field
			}
			return nil, &OptionError{Option: opt, Value: fmt.Sprint(ce.Value), Problem: "not accepted by the vxlan link", Accepted: ce.Accepted}
		}
		return nil, err
	}
	return spec, nil
}

// firstLink returns the first of names that exists on the host, with its
// MTU, or an error naming every candidate.
func (d *Driver) firstLink(ctx context.Context, names []string) (string, int, error) {
	for _, n := range names {
		mtu, err := d.cfg.Host.LinkMTU(ctx, n)
		if err == nil {
			return n, mtu, nil
		}
		if !errors.Is(err, vxlan.ErrNotFound) {
			return "", 0, err
		}
	}
	if len(names) == 1 {
		return "", 0, fmt.Errorf("no such interface on this host")
	}
	return "", 0, fmt.Errorf("none of %s exists on this host", strings.Join(names, ", "))
}

// errNoParent is seed 003's answer to a global network without a parent.
const errNoParent = `no parent interface was passed, use for example '-o parent="eth0,eth1,eth3"'`

// resolveParent chooses the parent of a parent-kind network on this host:
// the first candidate that exists, or whose master exists when it is an
// 802.1Q name (master.id), which is then made.
func (d *Driver) resolveParent(ctx context.Context, spec *NetworkSpec) error {
	p := &spec.Parent
	opt := "parent"
	if p.File != "" {
		opt = "parent-file"
		names, err := readParentFile(p.File)
		if err != nil {
			return &OptionError{Option: opt, Value: p.File, Problem: err.Error()}
		}
		p.Candidates = names
	}
	if len(p.Candidates) == 0 {
		if d.cfg.Scope == ScopeGlobal {
			return errors.New(errNoParent)
		}
		p.Isolated, p.Name = true, "pa_"+shortID(spec.ID)
		spec.ContainerMTU = 1500
		return nil
	}
	for _, c := range p.Candidates {
		mtu, err := d.cfg.Host.LinkMTU(ctx, c)
		if err == nil {
			p.Name, spec.ContainerMTU = c, mtu
			return nil
		}
		if !errors.Is(err, vxlan.ErrNotFound) {
			return err
		}
		master, id, ok := splitVLANName(c)
		if !ok {
			continue
		}
		mtu, err = d.cfg.Host.LinkMTU(ctx, master)
		if err == nil {
			p.Name, p.VLAN, spec.ContainerMTU = c, &VLANParent{Master: master, ID: id}, mtu
			return nil
		}
		if !errors.Is(err, vxlan.ErrNotFound) {
			return err
		}
	}
	return &OptionError{Option: opt, Value: strings.Join(p.Candidates, ","), Problem: fmt.Sprintf("none of %s exists on this host (for name.id, its master)", strings.Join(p.Candidates, ", "))}
}

// splitVLANName splits "eth0.65" into its master and 802.1Q id.
func splitVLANName(name string) (master string, id uint16, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 16)
	if err != nil || n < 1 || n > 4094 {
		return "", 0, false
	}
	return name[:i], uint16(n), true
}

// configFieldOption names the option behind each vxlan.Config field, for
// the errors of the final check.
var configFieldOption = map[string]string{
	"Name": "vxlanName", "VNI": "VxlanId", "Device": "VtepDev", "Group": "Group", "Local": "SrcAddr",
	"SrcPorts": "PortLow", "TTL": "TTL", "TOS": "TOS", "Ageing": "Age", "MTU": "vxlanMTU",
	"HardwareAddr": "vxlanHardwareAddr", "TxQueueLen": "vxlanTxQLen",
}

// errUnknownNetwork is returned for a network ID the driver does not know.
func (d *Driver) errUnknownNetwork(id string) error {
	return fmt.Errorf("network %s is not known to this plugin", shortID(id))
}

// lockNetwork returns the network with its lock held, or an error.
func (d *Driver) lockNetwork(id string) (*network, error) {
	d.mu.Lock()
	n := d.networks[id]
	d.mu.Unlock()
	if n == nil {
		return nil, d.errUnknownNetwork(id)
	}
	n.mu.Lock()
	if n.gone {
		n.mu.Unlock()
		return nil, d.errUnknownNetwork(id)
	}
	return n, nil
}

// CreateNetwork creates a network. Repeating it for a network that exists
// succeeds without changing anything.
func (d *Driver) CreateNetwork(ctx context.Context, req *CreateNetworkRequest) error {
	if req.NetworkID == "" {
		return errors.New("no NetworkID")
	}
	opts, err := genericOptions(req.Options)
	if err != nil {
		return err
	}
	ipv6, _ := req.Options[optEnableIPv6].(bool)
	spec, err := d.specFor(ctx, req.NetworkID, opts, req.IPv4Data, req.IPv6Data, ipv6)
	if err != nil {
		return err
	}

	d.mu.Lock()
	if _, ok := d.networks[req.NetworkID]; ok {
		d.mu.Unlock()
		return nil
	}
	if err := d.checkConflicts(spec); err != nil {
		d.mu.Unlock()
		return err
	}
	n := &network{spec: spec, endpoints: map[string]*Endpoint{}}
	n.mu.Lock()
	defer n.mu.Unlock()
	d.networks[req.NetworkID] = n
	d.mu.Unlock()

	err = d.cfg.Host.CreateNetwork(ctx, spec)
	if err == nil {
		if err = d.commit(n); err != nil {
			// Not in the state file: a restart would not know it, so it
			// must not exist.
			_ = d.cfg.Host.DeleteNetwork(context.WithoutCancel(ctx), spec, d.parentInUse(req.NetworkID, spec))
		}
	}
	if err != nil {
		n.gone = true
		d.mu.Lock()
		delete(d.networks, req.NetworkID)
		d.mu.Unlock()
		return err
	}
	d.log.Info("network created", "network", shortID(spec.ID), "vxlan", spec.VXLAN.Name, "vni", spec.VXLAN.VNI, "bridge", spec.Bridge.Name, "mtu", spec.ContainerMTU)
	return nil
}

// checkConflicts refuses a spec whose link names another network of this
// driver uses. d.mu is held.
func (d *Driver) checkConflicts(spec *NetworkSpec) error {
	ids := make([]string, 0, len(d.networks))
	for id := range d.networks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		o := d.networks[id].spec
		if spec.Kind == KindParent || o.Kind == KindParent {
			continue // parents are shared; isolated ones are named by network ID
		}
		for _, c := range []struct{ opt, name, theirs string }{
			{"vxlanName", spec.VXLAN.Name, o.VXLAN.Name},
			{"bridgeName", spec.Bridge.Name, o.Bridge.Name},
		} {
			if c.name != "" && c.name == c.theirs {
				return &OptionError{Option: c.opt, Value: c.name, Problem: "already used by network " + shortID(id)}
			}
		}
		if spec.VXLAN.VNI == o.VXLAN.VNI && effectivePort(spec) == effectivePort(o) {
			return &OptionError{Option: "VxlanId", Value: fmt.Sprint(spec.VXLAN.VNI), Problem: fmt.Sprintf("already used by network %s (vxlan %s)", shortID(id), o.VXLAN.Name)}
		}
	}
	return nil
}

// effectivePort is the UDP port a vxlan network's link uses.
func effectivePort(s *NetworkSpec) uint16 {
	if s.VXLAN.Port == 0 {
		return vxlan.DefaultPort
	}
	return s.VXLAN.Port
}

// parentInUse reports whether a network other than id has the parent of
// spec as its parent.
func (d *Driver) parentInUse(id string, spec *NetworkSpec) bool {
	if spec.Kind != KindParent {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for oid, o := range d.networks {
		if oid != id && o.spec.Kind == KindParent && o.spec.Parent.Name == spec.Parent.Name {
			return true
		}
	}
	return false
}

// AllocateNetwork checks a global network's options on a swarm manager and
// returns them, so every node's CreateNetwork receives them.
func (d *Driver) AllocateNetwork(_ context.Context, req *AllocateNetworkRequest) (map[string]string, error) {
	if d.cfg.Scope != ScopeGlobal {
		return nil, d.errWrongScope("AllocateNetwork")
	}
	if _, err := ParseOptions(req.Options); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(req.Options))
	for k, v := range req.Options {
		out[k] = v
	}
	return out, nil
}

// FreeNetwork is the manager's counterpart of AllocateNetwork; nothing was
// reserved, so there is nothing to free.
func (d *Driver) FreeNetwork(context.Context, string) error {
	if d.cfg.Scope != ScopeGlobal {
		return d.errWrongScope("FreeNetwork")
	}
	return nil
}

// errWrongScope answers a swarm manager's call to a local-scope driver.
func (d *Driver) errWrongScope(call string) error {
	return fmt.Errorf("%s is a swarm manager's call for a global-scope driver, and this plugin runs with -scope %s", call, d.cfg.Scope)
}

// DeleteNetwork removes a network. An unknown network is not an error:
// dockerd may delete a network the plugin has already forgotten.
func (d *Driver) DeleteNetwork(ctx context.Context, id string) error {
	n, err := d.lockNetwork(id)
	if err != nil {
		d.log.Warn("delete of an unknown network", "network", shortID(id))
		// A retry after a failed save: write the state that is now true.
		return d.save()
	}
	defer n.mu.Unlock()
	// dockerd deletes a network only once it holds no endpoint in it, so
	// endpoints still known here are stale (their containers went with a
	// reboot or a crash): they go with the network.
	for _, ep := range n.endpoints {
		d.log.Warn("deleting a stale endpoint with its network", "network", shortID(id), "endpoint", shortID(ep.ID))
		if err := d.cfg.Host.DeleteEndpoint(ctx, n.spec, ep); err != nil {
			return err
		}
		delete(n.endpoints, ep.ID)
	}
	if err := d.cfg.Host.DeleteNetwork(ctx, n.spec, d.parentInUse(id, n.spec)); err != nil {
		return err
	}
	n.gone = true
	d.mu.Lock()
	delete(d.networks, id)
	d.mu.Unlock()
	d.log.Info("network deleted", "network", shortID(id))
	return d.save()
}

// macFor returns the MAC of an endpoint that dockerd gave none: 02:42
// followed by the IPv4 address, as Docker's bridge driver does (unique
// within the segment because the address is), or a random locally
// administered one for an IPv6-only endpoint.
func macFor(addr netip.Prefix) net.HardwareAddr {
	if addr.IsValid() && addr.Addr().Is4() {
		a := addr.Addr().As4()
		return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
	}
	m := make(net.HardwareAddr, 6)
	_, _ = rand.Read(m)
	m[0] = m[0]&0xfe | 0x02
	return m
}

func parseCIDR(field, s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s %q: not an address in CIDR notation", field, s)
	}
	return p, nil
}

// CreateEndpoint creates a container's interface: a veth pair whose host
// end is in the network's bridge, or a macvlan link (macvlan mode, parent
// networks). It returns the interface fields it chose (only the MAC, and
// only when dockerd gave none), or nil.
func (d *Driver) CreateEndpoint(ctx context.Context, req *CreateEndpointRequest) (*EndpointInterface, error) {
	if req.EndpointID == "" {
		return nil, errors.New("no EndpointID")
	}
	ep := &Endpoint{ID: req.EndpointID, HostIf: "vh" + shortID(req.EndpointID), ContainerIf: "vc" + shortID(req.EndpointID)}
	var reply *EndpointInterface
	if req.Interface != nil {
		var err error
		if ep.Address, err = parseCIDR("Address", req.Interface.Address); err != nil {
			return nil, err
		}
		if ep.AddressIPv6, err = parseCIDR("AddressIPv6", req.Interface.AddressIPv6); err != nil {
			return nil, err
		}
		if req.Interface.MacAddress != "" {
			if ep.MAC, err = net.ParseMAC(req.Interface.MacAddress); err != nil || !vxlan.ValidMAC(ep.MAC) {
				return nil, fmt.Errorf("MacAddress %q: not a unicast MAC address", req.Interface.MacAddress)
			}
		}
	}
	if ep.MAC == nil {
		ep.MAC = macFor(ep.Address)
		reply = &EndpointInterface{MacAddress: ep.MAC.String()}
	}

	n, err := d.lockNetwork(req.NetworkID)
	if err != nil {
		return nil, err
	}
	defer n.mu.Unlock()
	if _, ok := n.endpoints[ep.ID]; ok {
		return nil, fmt.Errorf("endpoint %s exists", shortID(ep.ID))
	}
	if err := d.cfg.Host.CreateEndpoint(ctx, n.spec, ep); err != nil {
		return nil, err
	}
	n.endpoints[ep.ID] = ep
	if err := d.commit(n); err != nil {
		delete(n.endpoints, ep.ID)
		_ = d.cfg.Host.DeleteEndpoint(context.WithoutCancel(ctx), n.spec, ep)
		return nil, err
	}
	d.log.Debug("endpoint created", "network", shortID(req.NetworkID), "endpoint", shortID(ep.ID), "if", ep.HostIf, "mac", ep.MAC)
	return reply, nil
}

// DeleteEndpoint removes an endpoint's interfaces. An endpoint already gone
// is not an error.
func (d *Driver) DeleteEndpoint(ctx context.Context, networkID, endpointID string) error {
	n, err := d.lockNetwork(networkID)
	if err != nil {
		return err
	}
	defer n.mu.Unlock()
	ep, ok := n.endpoints[endpointID]
	if !ok {
		return nil
	}
	if err := d.cfg.Host.DeleteEndpoint(ctx, n.spec, ep); err != nil {
		return err
	}
	delete(n.endpoints, endpointID)
	d.log.Debug("endpoint deleted", "network", shortID(networkID), "endpoint", shortID(endpointID))
	return d.commit(n)
}

// endpoint returns a known endpoint with its network locked.
func (d *Driver) endpoint(networkID, endpointID string) (*network, *Endpoint, error) {
	n, err := d.lockNetwork(networkID)
	if err != nil {
		return nil, nil, err
	}
	ep, ok := n.endpoints[endpointID]
	if !ok {
		n.mu.Unlock()
		return nil, nil, fmt.Errorf("endpoint %s is not known in network %s", shortID(endpointID), shortID(networkID))
	}
	return n, ep, nil
}

// EndpointInfo answers EndpointOperInfo. It must succeed for dockerd, so
// it reports what it knows, and nothing for an endpoint it does not know.
func (d *Driver) EndpointInfo(_ context.Context, networkID, endpointID string) map[string]any {
	n, ep, err := d.endpoint(networkID, endpointID)
	if err != nil {
		return map[string]any{}
	}
	defer n.mu.Unlock()
	return map[string]any{"hostInterface": ep.HostIf, "mtu": n.spec.ContainerMTU}
}

// Join hands dockerd the container end of the endpoint's veth pair and the
// network's gateways, as bare addresses.
func (d *Driver) Join(_ context.Context, req *JoinRequest) (*JoinResponse, error) {
	n, ep, err := d.endpoint(req.NetworkID, req.EndpointID)
	if err != nil {
		return nil, err
	}
	defer n.mu.Unlock()
	resp := &JoinResponse{InterfaceName: &InterfaceName{SrcName: ep.ContainerIf, DstPrefix: "eth"}}
	for _, gw := range n.spec.Gateways {
		switch {
		case gw.Addr().Is4() && resp.Gateway == "" && ep.Address.IsValid():
			resp.Gateway = gw.Addr().String()
		case gw.Addr().Is6() && resp.GatewayIPv6 == "" && ep.AddressIPv6.IsValid():
			resp.GatewayIPv6 = gw.Addr().String()
		}
	}
	return resp, nil
}

// Leave is the end of Join. dockerd moves the interface back to the host
// itself; it is deleted with the endpoint.
func (d *Driver) Leave(_ context.Context, networkID, endpointID string) error {
	n, _, err := d.endpoint(networkID, endpointID)
	if err != nil {
		return err
	}
	n.mu.Unlock()
	return nil
}

// DiscoverNew records a swarm node dockerd announces.
func (d *Driver) DiscoverNew(_ context.Context, node NodeDiscoveryData) {
	d.mu.Lock()
	d.nodes[node.Address] = node
	d.mu.Unlock()
	d.log.Info("node discovered", "address", node.Address, "self", node.Self)
	if err := d.save(); err != nil {
		d.log.Error("saving state", "error", err)
	}
}

// DiscoverDelete forgets a swarm node.
func (d *Driver) DiscoverDelete(_ context.Context, node NodeDiscoveryData) {
	d.mu.Lock()
	delete(d.nodes, node.Address)
	d.mu.Unlock()
	d.log.Info("node left", "address", node.Address)
	if err := d.save(); err != nil {
		d.log.Error("saving state", "error", err)
	}
}
