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
