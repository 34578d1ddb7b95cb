package docker

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/ipam"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
)

// Config configures a Driver.
type Config struct {
	// Name is the driver's name, used as the prefix of its errors.
	Name string
	// Scope is fabric.ScopeLocal or fabric.ScopeGlobal.
	Scope string
	// VTEPDevice is the VTEP device of networks whose options name none: a
	// name, or a comma-separated list of which the first existing wins.
	VTEPDevice string
	// Host is the machine the networks are made on.
	Host Host
	// Logger receives the driver's log; nil discards it.
	Logger *slog.Logger
	// StateDir is the directory of the state store (state.db), which keeps
	// the networks, endpoints, swarm nodes and VNI allocations across
	// restarts; NewDriver makes it (mode 0700) if needed. Empty keeps them
	// in memory only.
	StateDir string
	// store is a store already open, for tests that restart a driver on
	// the same store; the driver does not close it.
	store *stateStore
	// CleanOrphans makes Restore delete the links this plugin made for
	// networks its state does not know, instead of only reporting them.
	CleanOrphans bool
	// ParentDir is the directory parent-file options are read from, an
	// absolute path; empty is fabric.DefaultParentDir.
	ParentDir string
	// parentOwner is the uid that must own ParentDir and its files: 0,
	// root; unprivileged tests set their own.
	parentOwner uint32
	// VNIRange is where a swarm manager allocates the VNIs of global
	// networks given without VxlanId; zero means DefaultVNIRange.
	VNIRange VNIRange
	// Peers are VTEPs of swarm nodes every vxlan network without Group
	// floods to, besides the nodes dockerd announces (it announces only
	// nodes that join after the plugin registered). This node's own
	// address is skipped.
	Peers []netip.Addr
	// Metrics, if not nil, records the calls, the restore and what the
	// driver holds (see NewMetrics); NewDriver adds the driver's metrics to
	// its registry, so it serves one driver.
	Metrics *Metrics
	// Membership configures the membership the plugins of a swarm keep
	// among themselves (membership.go); off without its Key.
	Membership MembershipConfig
}

// Driver implements the network driver: it keeps the networks and
// endpoints, turns requests into NetworkSpecs and Endpoints, and asks the
// Host to make them. Calls on one network are serialised; calls on
// different networks run in parallel.
type Driver struct {
	cfg         Config
	log         *slog.Logger
	vtepDevices []string // Config.VTEPDevice as a list

	vniRange VNIRange
	store    *stateStore // nil: no persistence
	ownStore bool        // opened by NewDriver: Close closes it

	mu       sync.Mutex // guards networks, nodes, departed, vnis and lastVNI
	networks map[string]*network
	nodes    map[string]NodeDiscoveryData // swarm nodes by address
	departed map[string]bool              // addresses of nodes dockerd said left (kept in the store)
	vnis     map[string]uint32            // VNIs allocated by this manager, by network ID
	lastVNI  uint32                       // the VNI allocated last

	// The IPAM driver (ipam.go): the allocator and its pools by ID.
	addrs  *ipam.Allocator
	ipamMu sync.Mutex // guards pools; never taken while holding mu
	pools  map[string]*poolRecord

	members map[string]member         // the membership's other nodes, by name (d.mu)
	dataOf  map[netip.Addr]netip.Addr // data-path address of each advertise address a member had (d.mu)

	peerMu sync.Mutex // serialises changes of the swarm's peers, from reading them to applying them

	memberMu sync.Mutex  // guards ml and selfData
	ml       *membership // nil: not running
	selfData netip.Addr  // the data-path address ml gossips

	eventMu       sync.Mutex    // guards events and eventsRunning
	events        []memberEvent // membership events waiting to be applied
	eventsRunning bool          // whether applyEvents runs
}

type network struct {
	mu        sync.Mutex // held for every operation on the network
	spec      *fabric.NetworkSpec
	endpoints map[string]*fabric.Endpoint
	gone      bool // deleted, or its creation failed
	// pools are the IDs of the driver's own address pools the network
	// was created with; segment probes and guards them.
	pools   []string
	segment *linuxhost.Segment
}

// Close stops the membership (without a leave message: see
// stopMembershipLocked) and releases the driver's state store, for another
// process to open. The networks and containers stay as they are.
func (d *Driver) Close() error {
	d.stopMembership()
	d.mu.Lock()
	nets := make([]*network, 0, len(d.networks))
	for _, n := range d.networks {
		nets = append(nets, n)
	}
	d.mu.Unlock()
	for _, n := range nets {
		n.mu.Lock()
		d.detachPools(n)
		n.mu.Unlock()
	}
	d.addrs.Wait()
	if d.ownStore {
		return d.store.Close()
	}
	return nil
}

// StatePath is the path of the driver's state store, or "" when it keeps
// its state in memory.
func (d *Driver) StatePath() string {
	if d.store == nil {
		return ""
	}
	return d.store.Path()
}

// persist applies a change to the store, if there is one.
func (d *Driver) persist(change func(*stateStore) error) error {
	if d.store == nil {
		return nil
	}
	return change(d.store)
}

// NewDriver returns a driver with no networks (Restore brings back those
// of its state store). Every setting is checked before the state store is
// opened, so a driver refused leaves nothing on disk.
func NewDriver(cfg Config) (*Driver, error) {
	if cfg.Scope != fabric.ScopeLocal && cfg.Scope != fabric.ScopeGlobal {
		return nil, fmt.Errorf("scope %q: accepted: local, global", cfg.Scope)
	}
	if cfg.Name == "" {
		cfg.Name = "vxlan"
	}
	if cfg.Host == nil {
		return nil, errors.New("no Host")
	}
	if cfg.ParentDir == "" {
		cfg.ParentDir = fabric.DefaultParentDir
	}
	var err error
	if cfg.ParentDir, err = fabric.CheckParentDir(cfg.ParentDir); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{cfg: cfg, log: log, networks: map[string]*network{}, nodes: map[string]NodeDiscoveryData{},
		departed: map[string]bool{}, vnis: map[string]uint32{}, vniRange: cfg.VNIRange, store: cfg.store, pools: map[string]*poolRecord{},
		members: map[string]member{}, dataOf: map[netip.Addr]netip.Addr{}}
	d.addrs = ipam.New(leaseStore{d}, ipam.WithLogger(log))
	if d.vniRange == (VNIRange{}) {
		d.vniRange = DefaultVNIRange
	}
	if err := d.vniRange.check(); err != nil {
		return nil, err
	}
	if err := cfg.Membership.check(); err != nil {
		return nil, err
	}
	if cfg.Scope == fabric.ScopeGlobal && len(cfg.Membership.Key) == 0 {
		log.Info("membership off (no membership key): swarm peers come from dockerd's announcements and the Peers setting only")
	}
	if cfg.VTEPDevice != "" {
		names, err := fabric.ParseNameList(cfg.VTEPDevice)
		if err != nil {
			return nil, fmt.Errorf("default VTEP device %q: %w", cfg.VTEPDevice, err)
		}
		d.vtepDevices = names
	}
	if err := cfg.Metrics.register(d); err != nil {
		return nil, err
	}
	if d.store == nil && cfg.StateDir != "" {
		if d.store, err = openStore(cfg.StateDir); err != nil {
			return nil, err
		}
		d.ownStore = true
	}
	return d, nil
}

// Capabilities answers GetCapabilities: the scope given at start.
func (d *Driver) Capabilities() CapabilitiesResponse {
	return CapabilitiesResponse{Scope: d.cfg.Scope, ConnectivityScope: d.cfg.Scope}
}

// errUnknownNetwork is returned for a network ID the driver does not know.
func (d *Driver) errUnknownNetwork(id string) error {
	return fmt.Errorf("network %s is not known to this plugin", fabric.ShortID(id))
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
