package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// OwnedLinks lists the vxlan links, bridges and isolated parents carrying
// an owner mark, and the container veths that are ports of those bridges.
func (h *LinuxHost) OwnedLinks(ctx context.Context) ([]OwnedLink, error) {
	links, err := h.conn.Links(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []OwnedLink
	owners := map[int]string{} // bridge index -> network ID
	for _, l := range links {
		if l.Group == ReapGroup {
			continue // being deleted
		}
		if id, ok := strings.CutPrefix(l.Alias, ownerMark("")); ok {
			out = append(out, OwnedLink{Name: l.Name, Kind: l.Kind, NetworkID: id})
			if l.Kind == linkKindBridge {
				owners[l.Index] = id
			}
		}
	}
	for _, l := range links {
		if id, ok := owners[l.MasterIndex]; ok && l.Group != ReapGroup && l.Kind == linkKindVeth && strings.HasPrefix(l.Name, endpointHostIf("")) {
			out = append(out, OwnedLink{Name: l.Name, Kind: l.Kind, NetworkID: id})
		}
	}
	return out, nil
}

// DeleteOwnedLink deletes a link OwnedLinks reported, checking again that
// it is what was reported.
func (h *LinuxHost) DeleteOwnedLink(ctx context.Context, o OwnedLink) error {
	l, err := h.conn.LinkByName(ctx, o.Name)
	if errors.Is(err, rtlink.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Kind != o.Kind || (l.Alias != ownerMark(o.NetworkID) && l.Kind != linkKindVeth) {
		return fmt.Errorf("%s changed since it was found; it is left alone", o.Name)
	}
	return h.conn.DeleteLink(ctx, o.Name)
}

var _ Host = (*LinuxHost)(nil)
