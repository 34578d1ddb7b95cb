package plugin

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
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
