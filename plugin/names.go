package plugin

import "strings"

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
