package fabric

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// markPrefix starts the alias of every link made for a network.
const markPrefix = "docker-vxlan-plugin net="

// OwnerMark is the alias of every link the project makes for the network
// of the given ID: "docker-vxlan-plugin net=<ID>". Only links carrying it
// are ever deleted.
func OwnerMark(networkID string) string { return markPrefix + networkID }

// NetworkOfMark returns the network ID of an owner mark, and whether alias
// is one.
func NetworkOfMark(alias string) (string, bool) { return strings.CutPrefix(alias, markPrefix) }

// ShortID is the first 12 characters of an ID, as links, logs and errors
// name networks and endpoints.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Names of the links made for networks and endpoints, from the first 12
// characters of their IDs (interface names have 15 bytes). Each prefix
// (vx_, br_, pa_, pb_, vh, vc) is the project's: a link is recognised as
// one it made by its name together with its kind, mark or master.

// VXLANLinkName is the default name of a network's vxlan link.
func VXLANLinkName(networkID string) string { return "vx_" + ShortID(networkID) }

// BridgeLinkName is the default name of a bridge-mode network's bridge.
func BridgeLinkName(networkID string) string { return "br_" + ShortID(networkID) }

// IsolatedParentName names the parent made for an isolated parent network.
func IsolatedParentName(networkID string) string { return "pa_" + ShortID(networkID) }

// HostIfName names the host end of an endpoint's veth pair.
func HostIfName(endpointID string) string { return "vh" + ShortID(endpointID) }

// ContainerIfName names an endpoint's container interface while it is in
// the host's namespace.
func ContainerIfName(endpointID string) string { return "vc" + ShortID(endpointID) }

// cniMarker separates the two parts of a CNI network's ID.
const cniMarker = "-cni-"

// CNINetworkID is the ID of a network of the CNI front end: 12 hex digits
// of the SHA-256 of the network's name, which name its links (vx_ and br_
// followed by them), then "-cni-" and the name, so that the links' owner
// mark says which CNI network made them. Docker's network IDs hold letters
// and digits only, so the two never meet.
func CNINetworkID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:6]) + cniMarker + name
}

// IsCNINetworkID reports whether a network ID in an owner mark is one
// CNINetworkID made.
func IsCNINetworkID(id string) bool { return strings.Contains(id, cniMarker) }
