package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

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
	ep := &fabric.Endpoint{ID: req.EndpointID, HostIf: fabric.HostIfName(req.EndpointID), ContainerIf: fabric.ContainerIfName(req.EndpointID)}
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
		ep.MAC = fabric.MACFor(ep.Address)
		reply = &EndpointInterface{MacAddress: ep.MAC.String()}
	}

	n, err := d.lockNetwork(req.NetworkID)
	if err != nil {
		return nil, err
	}
	defer n.mu.Unlock()
	if _, ok := n.endpoints[ep.ID]; ok {
		return nil, fmt.Errorf("endpoint %s exists", fabric.ShortID(ep.ID))
	}
	if err := d.cfg.Host.CreateEndpoint(ctx, n.spec, ep, nil); err != nil {
		return nil, err
	}
	n.endpoints[ep.ID] = ep
	if err := d.persist(func(s *stateStore) error { return s.putEndpoint(n.spec.ID, ep) }); err != nil {
		delete(n.endpoints, ep.ID)
		_ = d.cfg.Host.DeleteEndpoint(context.WithoutCancel(ctx), n.spec, ep)
		return nil, err
	}
	d.bindEndpoint(n, ep)
	d.log.Debug("endpoint created", "network", fabric.ShortID(req.NetworkID), "endpoint", fabric.ShortID(ep.ID), "if", ep.HostIf, "mac", ep.MAC.String())
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
		// Gone already; a retry after a failed commit removes the record.
		return d.persist(func(s *stateStore) error { return s.deleteEndpoint(networkID, endpointID) })
	}
	if err := d.cfg.Host.DeleteEndpoint(ctx, n.spec, ep); err != nil {
		return err
	}
	delete(n.endpoints, endpointID)
	d.log.Debug("endpoint deleted", "network", fabric.ShortID(networkID), "endpoint", fabric.ShortID(endpointID))
	return d.persist(func(s *stateStore) error { return s.deleteEndpoint(networkID, endpointID) })
}

// endpoint returns a known endpoint with its network locked.
func (d *Driver) endpoint(networkID, endpointID string) (*network, *fabric.Endpoint, error) {
	n, err := d.lockNetwork(networkID)
	if err != nil {
		return nil, nil, err
	}
	ep, ok := n.endpoints[endpointID]
	if !ok {
		n.mu.Unlock()
		return nil, nil, fmt.Errorf("endpoint %s is not known in network %s", fabric.ShortID(endpointID), fabric.ShortID(networkID))
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
