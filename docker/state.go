package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker/internal/store"
	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/ipam"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// stateStore keeps the plugin's networks, endpoints and swarm nodes across
// restarts: Docker does not replay CreateNetwork to a driver that
// restarted, so without it a restarted plugin would not know its networks.
// Each change is one commit of the records it touches (package store), so
// its cost does not grow with the number of networks.
type stateStore struct {
	db *store.DB
}

// openStore opens the store of the state directory dir, creating it if
// needed. A state.json of an earlier plugin (version 1) is turned into
// records on first start and kept as state.json.v1.bak; a state.json that
// cannot be read is refused, and left as it is.
func openStore(dir string) (*stateStore, error) {
	if _, err := store.MigrateFile(dir, migrateV1); err != nil {
		return nil, err
	}
	db, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	return &stateStore{db: db}, nil
}

// Path is the path of the store's file.
func (s *stateStore) Path() string { return s.db.Path() }

// Close closes the store, releasing it for another process.
func (s *stateStore) Close() error { return s.db.Close() }

// state is everything the store holds.
type state struct {
	Networks []*networkState
	Nodes    []NodeDiscoveryData
	// Left are the addresses of nodes dockerd said left, and has not
	// announced again since: not flooded to, whatever else names them.
	Left []string
	// VNIs are the VNIs this node allocated as a swarm manager, by
	// network ID.
	VNIs map[string]uint32
	// Pools are the IPAM driver's pools by ID, Leases their leases.
	Pools  map[string]*poolRecord
	Leases map[string][]ipam.Lease
}

// networkState is one network and its endpoints.
type networkState struct {
	Spec      *fabric.NetworkSpec
	Endpoints []*fabric.Endpoint
}

// Load reads every record. A record that does not decode, or a store of a
// newer version, is an error that says which and what to do: the plugin
// never resets its state silently.
func (s *stateStore) Load() (*state, error) {
	st := &state{VNIs: map[string]uint32{}, Pools: map[string]*poolRecord{}, Leases: map[string][]ipam.Lease{}}
	byID := map[string]*networkState{}
	err := s.db.Load(func(b store.Bucket, key string, raw json.RawMessage) error {
		switch b {
		case store.Networks:
			var r networkRecord
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			spec, err := r.spec()
			if err != nil {
				return err
			}
			ns := &networkState{Spec: spec, Endpoints: []*fabric.Endpoint{}}
			byID[key] = ns
			st.Networks = append(st.Networks, ns)
		case store.Endpoints:
			netID, _, _ := store.SplitEndpointKey(key)
			var r endpointRecord
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			ns := byID[netID]
			if ns == nil {
				return fmt.Errorf("endpoint of network %s, which the store does not hold", fabric.ShortID(netID))
			}
			ep, err := r.endpoint()
			if err != nil {
				return err
			}
			ns.Endpoints = append(ns.Endpoints, ep)
		case store.Nodes:
			var r nodeRecord
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			if r.Left {
				st.Left = append(st.Left, r.Address)
			} else {
				st.Nodes = append(st.Nodes, r.node())
			}
		case store.VNIs:
			var r vniRecord
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			st.VNIs[key] = r.VNI
		case store.Pools:
			var r poolRecord
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			st.Pools[key] = &r
		case store.Leases:
			pool, _, ok := strings.Cut(key, "@")
			var l ipam.Lease
			if err := json.Unmarshal(raw, &l); err != nil {
				return err
			}
			if !ok || !l.Addr.IsValid() {
				return fmt.Errorf("lease %q: no pool or address", key)
			}
			st.Leases[pool] = append(st.Leases[pool], l)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// putNetwork records a network (not its endpoints).
func (s *stateStore) putNetwork(spec *fabric.NetworkSpec) error {
	return s.update(func(tx *store.Tx) error { return tx.Put(store.Networks, spec.ID, recordOf(spec)) })
}

// deleteNetwork removes a network with its endpoints; a network the store
// does not hold is not an error.
func (s *stateStore) deleteNetwork(id string) error {
	return s.update(func(tx *store.Tx) error { return tx.DeleteNetwork(id) })
}

// putEndpoint records an endpoint of a network.
func (s *stateStore) putEndpoint(networkID string, ep *fabric.Endpoint) error {
	return s.update(func(tx *store.Tx) error {
		return tx.Put(store.Endpoints, store.EndpointKey(networkID, ep.ID), endpointRecordOf(ep))
	})
}

// deleteEndpoint removes an endpoint's record.
func (s *stateStore) deleteEndpoint(networkID, endpointID string) error {
	return s.update(func(tx *store.Tx) error { return tx.Delete(store.Endpoints, store.EndpointKey(networkID, endpointID)) })
}

// putNode records a swarm node.
func (s *stateStore) putNode(node NodeDiscoveryData) error {
	return s.update(func(tx *store.Tx) error { return tx.Put(store.Nodes, node.Address, nodeRecordOf(node)) })
}

// deleteNode records that a swarm node left: this node's own record is
// removed, another node's is replaced by a record that it left.
func (s *stateStore) deleteNode(node NodeDiscoveryData) error {
	return s.update(func(tx *store.Tx) error {
		if node.Self {
			return tx.Delete(store.Nodes, node.Address)
		}
		return tx.Put(store.Nodes, node.Address, nodeRecord{Address: node.Address, Left: true})
	})
}

func (s *stateStore) update(fn func(tx *store.Tx) error) error {
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	return nil
}

// networkRecord is a network as the store keeps it. Its JSON field names
// are the on-disk schema (store.SchemaVersion): renaming a field of
// fabric.NetworkSpec changes nothing here. The vxlan link's settings are kept in
// vxlan.Config's own JSON form.
type networkRecord struct {
	ID             string             `json:"id"`
	Kind           fabric.NetworkKind `json:"kind"`
	VXLAN          *vxlan.Config      `json:"vxlan,omitempty"`
	VTEPCandidates []string           `json:"vtep_candidates,omitempty"`
	Bridge         *bridgeRecord      `json:"bridge,omitempty"`
	Parent         *parentRecord      `json:"parent,omitempty"`
	MacvlanMode    string             `json:"macvlan_mode,omitempty"`
	Peers          []netip.Addr       `json:"peers,omitempty"`
	ControlPlane   string             `json:"control_plane,omitempty"` // "evpn", or omitted for none
	HostGateway    bool               `json:"host_gateway,omitempty"`
	Gateways       []netip.Prefix     `json:"gateways,omitempty"`
	AnycastGateway bool               `json:"anycast_gateway,omitempty"`
	HostAddresses  []netip.Prefix     `json:"host_addresses,omitempty"`
	ContainerMTU   int                `json:"container_mtu"`
	VTEPFilter     *bool              `json:"vtep_filter,omitempty"` // the VtepFilter option; omitted: the daemon's default
	VTEPAllow      []netip.Prefix     `json:"vtep_allow,omitempty"`
}

type bridgeRecord struct {
	Name         string `json:"name"`
	MTU          int    `json:"mtu,omitempty"`
	HardwareAddr string `json:"hardware_addr,omitempty"`
	TxQueueLen   int    `json:"tx_queue_len,omitempty"`
}

type parentRecord struct {
	Candidates []string `json:"candidates,omitempty"`
	File       string   `json:"file,omitempty"`
	Name       string   `json:"name"`
	VLANMaster string   `json:"vlan_master,omitempty"`
	VLANID     uint16   `json:"vlan_id,omitempty"`
	Isolated   bool     `json:"isolated,omitempty"`
}

type endpointRecord struct {
	ID          string       `json:"id"`
	HostIf      string       `json:"host_if"`
	ContainerIf string       `json:"container_if"`
	MAC         string       `json:"mac,omitempty"`
	Address     netip.Prefix `json:"address,omitzero"`
	AddressIPv6 netip.Prefix `json:"address_ipv6,omitzero"`
}

type nodeRecord struct {
	Address     string `json:"address"`
	BindAddress string `json:"bind_address,omitempty"`
	Self        bool   `json:"self,omitempty"`
	// Left records that dockerd said the node left (see state.Left).
	Left bool `json:"left,omitempty"`
}

func nodeRecordOf(n NodeDiscoveryData) nodeRecord {
	return nodeRecord{Address: n.Address, BindAddress: n.BindAddress, Self: n.Self}
}

func (r nodeRecord) node() NodeDiscoveryData {
	return NodeDiscoveryData{Address: r.Address, BindAddress: r.BindAddress, Self: r.Self}
}

func recordOf(s *fabric.NetworkSpec) *networkRecord {
	r := &networkRecord{ID: s.ID, Kind: s.Kind, VTEPCandidates: s.VTEPCandidates, Peers: s.Peers,
		HostGateway: s.HostGateway, Gateways: s.Gateways, AnycastGateway: s.AnycastGateway, HostAddresses: s.HostAddresses,
		ContainerMTU: s.ContainerMTU, VTEPFilter: s.VTEPFilter, VTEPAllow: s.VTEPAllow}
	if s.Kind != fabric.KindParent {
		r.VXLAN = &s.VXLAN
	}
	if s.Kind == fabric.KindBridge {
		r.Bridge = &bridgeRecord{Name: s.Bridge.Name, MTU: s.Bridge.MTU, HardwareAddr: s.Bridge.HardwareAddr.String(), TxQueueLen: s.Bridge.TxQueueLen}
	}
	if s.Kind == fabric.KindParent {
		p := s.Parent
		r.Parent = &parentRecord{Candidates: p.Candidates, File: p.File, Name: p.Name, Isolated: p.Isolated}
		if p.VLAN != nil {
			r.Parent.VLANMaster, r.Parent.VLANID = p.VLAN.Master, p.VLAN.ID
		}
	}
	if s.Kind != fabric.KindBridge {
		r.MacvlanMode = s.MacvlanMode.String()
	}
	if s.ControlPlane != fabric.ControlPlaneNone {
		r.ControlPlane = s.ControlPlane.String()
	}
	return r
}

func (r *networkRecord) spec() (*fabric.NetworkSpec, error) {
	s := &fabric.NetworkSpec{ID: r.ID, Kind: r.Kind, VTEPCandidates: r.VTEPCandidates, Peers: r.Peers,
		HostGateway: r.HostGateway, Gateways: r.Gateways, AnycastGateway: r.AnycastGateway, HostAddresses: r.HostAddresses,
		ContainerMTU: r.ContainerMTU, VTEPFilter: r.VTEPFilter, VTEPAllow: r.VTEPAllow}
	switch r.Kind {
	case fabric.KindBridge, fabric.KindMacvlan, fabric.KindParent:
	default:
		return nil, fmt.Errorf("network %s: unknown kind %q", fabric.ShortID(r.ID), r.Kind)
	}
	if r.ID == "" {
		return nil, errors.New("network record without ID")
	}
	if r.VXLAN != nil {
		s.VXLAN = *r.VXLAN
	}
	if b := r.Bridge; b != nil {
		mac, err := macOf(b.HardwareAddr)
		if err != nil {
			return nil, fmt.Errorf("network %s: bridge: %w", fabric.ShortID(r.ID), err)
		}
		s.Bridge = fabric.BridgeSpec{Name: b.Name, MTU: b.MTU, HardwareAddr: mac, TxQueueLen: b.TxQueueLen}
	}
	if p := r.Parent; p != nil {
		s.Parent = fabric.ParentSpec{Candidates: p.Candidates, File: p.File, Name: p.Name, Isolated: p.Isolated}
		if p.VLANMaster != "" {
			s.Parent.VLAN = &fabric.VLANParent{Master: p.VLANMaster, ID: p.VLANID}
		}
	}
	if r.MacvlanMode != "" {
		m, err := rtlink.ParseMacvlanMode(r.MacvlanMode)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", fabric.ShortID(r.ID), err)
		}
		s.MacvlanMode = m
	}
	cp, err := fabric.ParseControlPlane(r.ControlPlane)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", fabric.ShortID(r.ID), err)
	}
	s.ControlPlane = cp
	return s, nil
}

func endpointRecordOf(ep *fabric.Endpoint) *endpointRecord {
	return &endpointRecord{ID: ep.ID, HostIf: ep.HostIf, ContainerIf: ep.ContainerIf, MAC: ep.MAC.String(), Address: ep.Address, AddressIPv6: ep.AddressIPv6}
}

func (r *endpointRecord) endpoint() (*fabric.Endpoint, error) {
	mac, err := macOf(r.MAC)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", fabric.ShortID(r.ID), err)
	}
	return &fabric.Endpoint{ID: r.ID, HostIf: r.HostIf, ContainerIf: r.ContainerIf, MAC: mac, Address: r.Address, AddressIPv6: r.AddressIPv6}, nil
}

func macOf(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	return net.ParseMAC(s)
}

// v1state is the state.json of plugins before the store (version 1): the
// fabric.NetworkSpec and fabric.Endpoint types of then, encoded with Go's default field
// names. It is frozen here so that changing those types cannot break the
// migration.
type v1state struct {
	Version  int `json:"version"`
	Networks []*struct {
		Spec      *v1Spec       `json:"spec"`
		Endpoints []*v1Endpoint `json:"endpoints"`
	} `json:"networks"`
	Nodes []NodeDiscoveryData `json:"nodes"`
}

type v1Spec struct {
	ID             string
	Kind           fabric.NetworkKind
	VXLAN          v1VXLAN
	VTEPCandidates []string
	Bridge         struct {
		Name         string
		MTU          int
		HardwareAddr net.HardwareAddr
		TxQueueLen   int
	}
	Parent struct {
		Candidates []string
		File       string
		Name       string
		VLAN       *fabric.VLANParent
		Isolated   bool
	}
	MacvlanMode  string
	Peers        []netip.Addr
	HostGateway  *bool
	Gateways     []netip.Prefix
	ContainerMTU int
}

// v1VXLAN holds the vxlan.Config fields the plugin set, as version 1
// encoded them (Ageing in nanoseconds, MACs in base64).
type v1VXLAN struct {
	Name, Device                    string
	VNI                             uint32
	Group, Local                    netip.Addr
	Port                            uint16
	SrcPorts                        struct{ Low, High uint16 }
	TTL, TOS                        uint8
	Learning                        *bool
	Ageing                          *int64
	Limit                           uint32
	Proxy, RSC, L2Miss, L3Miss, GBP bool
	MTU, TxQueueLen                 int
	HardwareAddr                    net.HardwareAddr
	Alias                           string
	Up                              bool
}

type v1Endpoint struct {
	ID, HostIf, ContainerIf string
	MAC                     net.HardwareAddr
	Address, AddressIPv6    netip.Prefix
}

// migrateV1 turns a version 1 state.json into records.
func migrateV1(old []byte, tx *store.Tx) error {
	var st v1state
	if err := json.Unmarshal(old, &st); err != nil {
		return fmt.Errorf("state file state.json is corrupt (%v); move it away to start with no networks, which leaves existing networks unknown to the plugin", err)
	}
	switch {
	case st.Version > 1:
		return fmt.Errorf("state file state.json is of version %d, which this plugin does not know; run a newer plugin", st.Version)
	case st.Version < 1:
		return errors.New("state file state.json has no valid version; move it away to start with no networks")
	}
	for i, n := range st.Networks {
		if n == nil || n.Spec == nil || n.Spec.ID == "" {
			return fmt.Errorf("state file state.json: network %d has no spec or ID", i)
		}
		spec, err := n.Spec.spec()
		if err != nil {
			return fmt.Errorf("state file state.json: network %s: %w", fabric.ShortID(n.Spec.ID), err)
		}
		if err := tx.Put(store.Networks, spec.ID, recordOf(spec)); err != nil {
			return err
		}
		for _, e := range n.Endpoints {
			ep := &fabric.Endpoint{ID: e.ID, HostIf: e.HostIf, ContainerIf: e.ContainerIf, MAC: e.MAC, Address: e.Address, AddressIPv6: e.AddressIPv6}
			if err := tx.Put(store.Endpoints, store.EndpointKey(spec.ID, ep.ID), endpointRecordOf(ep)); err != nil {
				return err
			}
		}
	}
	for _, node := range st.Nodes {
		if err := tx.Put(store.Nodes, node.Address, nodeRecordOf(node)); err != nil {
			return err
		}
	}
	return nil
}

func (v *v1Spec) spec() (*fabric.NetworkSpec, error) {
	x := v.VXLAN
	s := &fabric.NetworkSpec{ID: v.ID, Kind: v.Kind, VTEPCandidates: v.VTEPCandidates, Peers: v.Peers, Gateways: v.Gateways, ContainerMTU: v.ContainerMTU,
		HostGateway: v.HostGateway != nil && *v.HostGateway,
		VXLAN: vxlan.Config{Name: x.Name, VNI: x.VNI, Device: x.Device, Group: x.Group, Local: x.Local, Port: x.Port,
			SrcPorts: vxlan.PortRange{Low: x.SrcPorts.Low, High: x.SrcPorts.High}, TTL: x.TTL, TOS: x.TOS, Learning: x.Learning,
			Limit: x.Limit, Proxy: x.Proxy, RSC: x.RSC, L2Miss: x.L2Miss, L3Miss: x.L3Miss, GBP: x.GBP, MTU: x.MTU,
			TxQueueLen: x.TxQueueLen, HardwareAddr: x.HardwareAddr, Alias: x.Alias, Up: x.Up},
		Bridge: fabric.BridgeSpec{Name: v.Bridge.Name, MTU: v.Bridge.MTU, HardwareAddr: v.Bridge.HardwareAddr, TxQueueLen: v.Bridge.TxQueueLen},
		Parent: fabric.ParentSpec{Candidates: v.Parent.Candidates, File: v.Parent.File, Name: v.Parent.Name, VLAN: v.Parent.VLAN, Isolated: v.Parent.Isolated},
	}
	if x.Ageing != nil {
		s.VXLAN.Ageing = vxlan.Ptr(time.Duration(*x.Ageing))
	}
	if v.MacvlanMode != "" {
		m, err := rtlink.ParseMacvlanMode(v.MacvlanMode)
		if err != nil {
			return nil, err
		}
		s.MacvlanMode = m
	}
	return s, nil
}
