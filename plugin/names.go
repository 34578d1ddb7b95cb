package plugin

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// ownerMark is the alias of every link the plugin creates for a network;
// only links carrying it are ever deleted.
func ownerMark(networkID string) string { return "docker-vxlan-plugin net=" + networkID }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// vlanMark is the alias of the 802.1Q sub-interfaces the plugin makes; they
// may serve several networks, so the mark names none.
const vlanMark = "docker-vxlan-plugin vlan"

func isOwnerMark(alias string) bool { return strings.HasPrefix(alias, ownerMark("")) }

// Names of the links the plugin makes, from the first 12 characters of
// dockerd's network and endpoint IDs (interface names have 15 bytes).
func vxlanLinkName(networkID string) string      { return "vx_" + shortID(networkID) }
func bridgeLinkName(networkID string) string     { return "br_" + shortID(networkID) }
func isolatedParentName(networkID string) string { return "pa_" + shortID(networkID) }
func isolatedPeerName(networkID string) string   { return "pb_" + shortID(networkID) }
func endpointHostIf(endpointID string) string    { return "vh" + shortID(endpointID) }
func endpointContainerIf(endpointID string) string {
	return "vc" + shortID(endpointID)
}

// cniMarker separates the two parts of a CNI network's ID.
const cniMarker = "-cni-"

// CNINetworkID is the ID of a network of the CNI front end: 12 hex digits
// of the SHA-256 of the network's name, which name its links (vx_ and br_
// followed by them), then "-cni-" and the name, so that the links' owner
// mark ("docker-vxlan-plugin net=...") says which CNI network made them.
// Docker's network IDs hold letters and digits only, so the two never meet.
func CNINetworkID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:6]) + cniMarker + name
}

// IsCNINetworkID reports whether a network ID in an owner mark is one
// CNINetworkID made.
func IsCNINetworkID(id string) bool { return strings.Contains(id, cniMarker) }
