package plugin

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
)

// Scopes a driver can report.
const (
	ScopeLocal  = "local"
	ScopeGlobal = "global"
)

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
	// ParentDir is the directory parent-file options are read from, an
	// absolute path; empty is DefaultParentDir.
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

	mu       sync.Mutex // guards networks, nodes, departed, vnis and lastVNI
	networks map[string]*network
	nodes    map[string]NodeDiscoveryData // swarm nodes by address
	departed map[string]bool              // addresses of nodes that left since the start
	vnis     map[string]uint32            // VNIs allocated by this manager, by network ID
	lastVNI  uint32                       // the VNI allocated last
}

type network struct {
	mu        sync.Mutex // held for every operation on the network
	spec      *NetworkSpec
	endpoints map[string]*Endpoint
	gone      bool // deleted, or its creation failed
}

// persist applies a change to the store, if there is one.
func (d *Driver) persist(change func(*Store) error) error {
	if d.cfg.Store == nil {
		return nil
	}
	return change(d.cfg.Store)
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
	if cfg.ParentDir == "" {
		cfg.ParentDir = DefaultParentDir
	}
	var err error
	if cfg.ParentDir, err = checkParentDir(cfg.ParentDir); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{cfg: cfg, log: log, networks: map[string]*network{}, nodes: map[string]NodeDiscoveryData{}, departed: map[string]bool{}, vnis: map[string]uint32{}, vniRange: cfg.VNIRange}
	if d.vniRange == (VNIRange{}) {
		d.vniRange = DefaultVNIRange
	}
	if err := d.vniRange.check(); err != nil {
		return nil, err
	}
	if cfg.VTEPDevice != "" {
		names, err := parseNameList(cfg.VTEPDevice)
		if err != nil {
			return nil, fmt.Errorf("default VTEP device %q: %w", cfg.VTEPDevice, err)
		}
		d.vtepDevices = names
	}
	return d, nil
}

// Capabilities answers GetCapabilities: the scope given at start.
func (d *Driver) Capabilities() CapabilitiesResponse {
	return CapabilitiesResponse{Scope: d.cfg.Scope, ConnectivityScope: d.cfg.Scope}
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
