package docker

// Wire types of Docker's remote network driver protocol (libnetwork's
// drivers/remote/api), as dockerd 20.10 and later sends and reads them.
// Every request is a POST with a JSON body; every response is JSON, with
// Err set when the call failed.

// Response carries an error text that dockerd shows the user as
// "Error response from daemon: remote: <Err>".
type Response struct {
	Err string `json:",omitempty"`
	// Error carries the same text in answers to IPAM calls: the remote
	// IPAM protocol names the field Error.
	Error string `json:",omitempty"`
}

// ActivateResponse answers Plugin.Activate.
type ActivateResponse struct {
	Implements []string
}

// CapabilitiesResponse answers NetworkDriver.GetCapabilities.
type CapabilitiesResponse struct {
	Response
	Scope             string
	ConnectivityScope string
}

// IPAMData is one address pool of a network. Pool and Gateway are CIDR
// ("198.19.70.1/24"); AuxAddresses may be absent.
type IPAMData struct {
	AddressSpace string
	Pool         string
	Gateway      string
	AuxAddresses map[string]string `json:",omitempty"`
}

// CreateNetworkRequest is NetworkDriver.CreateNetwork. The user's -o
// options are under Options["com.docker.network.generic"], as typed.
type CreateNetworkRequest struct {
	NetworkID string
	Options   map[string]any
	IPv4Data  []IPAMData
	IPv6Data  []IPAMData
}

// AllocateNetworkRequest is NetworkDriver.AllocateNetwork, sent to a
// swarm manager for a global-scope driver; the options are flat.
type AllocateNetworkRequest struct {
	NetworkID string
	Options   map[string]string
	IPv4Data  []IPAMData
	IPv6Data  []IPAMData
}

// AllocateNetworkResponse returns the options every node's CreateNetwork
// will receive as its generic options.
type AllocateNetworkResponse struct {
	Response
	Options map[string]string
}

// NetworkRequest names a network: DeleteNetwork and FreeNetwork.
type NetworkRequest struct {
	NetworkID string
}

// EndpointInterface is the container interface of an endpoint. Address
// and AddressIPv6 are CIDR.
type EndpointInterface struct {
	Address     string `json:",omitempty"`
	AddressIPv6 string `json:",omitempty"`
	MacAddress  string `json:",omitempty"`
}

// CreateEndpointRequest is NetworkDriver.CreateEndpoint.
type CreateEndpointRequest struct {
	NetworkID  string
	EndpointID string
	Interface  *EndpointInterface
	Options    map[string]any
}

// CreateEndpointResponse may only fill fields the request left empty.
type CreateEndpointResponse struct {
	Response
	Interface *EndpointInterface `json:",omitempty"`
}

// EndpointRequest names an endpoint: DeleteEndpoint, EndpointOperInfo,
// Leave, ProgramExternalConnectivity and RevokeExternalConnectivity.
type EndpointRequest struct {
	NetworkID  string
	EndpointID string
	Options    map[string]any `json:",omitempty"`
}

// EndpointInfoResponse answers EndpointOperInfo.
type EndpointInfoResponse struct {
	Response
	Value map[string]any
}

// JoinRequest is NetworkDriver.Join: put the endpoint into the sandbox.
type JoinRequest struct {
	NetworkID  string
	EndpointID string
	SandboxKey string
	Options    map[string]any
}

// InterfaceName tells dockerd which host interface to move into the
// container, and the prefix of its name there ("eth" gives eth0, eth1...).
type InterfaceName struct {
	SrcName   string
	DstPrefix string
}

// StaticRoute is a route dockerd adds in the container.
type StaticRoute struct {
	Destination string
	RouteType   int
	NextHop     string
}

// JoinResponse answers Join. Gateway and GatewayIPv6 are bare addresses.
type JoinResponse struct {
	Response
	InterfaceName         *InterfaceName `json:",omitempty"`
	Gateway               string         `json:",omitempty"`
	GatewayIPv6           string         `json:",omitempty"`
	StaticRoutes          []StaticRoute  `json:",omitempty"`
	DisableGatewayService bool           `json:",omitempty"`
}

// DiscoveryNotification is DiscoverNew and DiscoverDelete. For node
// discovery (type 1) the data is a NodeDiscoveryData.
type DiscoveryNotification struct {
	DiscoveryType int
	DiscoveryData any
}

// NodeDiscoveryData describes a swarm node: Self is true for this host.
type NodeDiscoveryData struct {
	Address     string
	BindAddress string
	Self        bool
}

// Keys of the options dockerd puts in CreateNetworkRequest.Options.
const (
	optGeneric    = "com.docker.network.generic"
	optEnableIPv6 = "com.docker.network.enable_ipv6"
)
