package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// VNIFilterLink is one VNI filtering vxlan link (`external vnifilter`) with
// the VNIs it carries, as printed in JSON.
type VNIFilterLink struct {
	Name string     `json:"name"`
	VNIs []VNIEntry `json:"vnis"`
}

// VNIEntry is one VNI or range of VNIs of a VNI filtering link, as printed
// in JSON: First and Last are equal for a single VNI; Group is the
// multicast group or unicast remote of the VNIs, empty for the link's own.
type VNIEntry struct {
	First uint32 `json:"first"`
	Last  uint32 `json:"last"`
	Group string `json:"group,omitempty"`
}

// printVNIs prints the VNIs of every VNI filtering link of the namespace
// (what `bridge vni show` prints) after the link listing: a block per link
// in the table, or one more JSON document {"vnifilter": [...]} after the
// list of links. Without VNI filtering links it prints nothing.
func printVNIs(ctx context.Context, netns string, asJSON bool, out io.Writer) error {
	c, configs, err := listVXLAN(ctx, netns)
	if err != nil {
		return err
	}
	defer c.Close()
	var links []VNIFilterLink
	var ranges [][]vxlan.VNIRange // per link, for the table
	for _, cfg := range configs {
		if !cfg.VNIFilter {
			continue
		}
		vnis, err := c.VNIs(ctx, cfg.Name)
		if err != nil {
			return err
		}
		l := VNIFilterLink{Name: cfg.Name, VNIs: []VNIEntry{}}
		for _, r := range vnis {
			l.VNIs = append(l.VNIs, VNIEntry{First: r.First, Last: r.Last, Group: addrOrEmpty(r.Group)})
		}
		links, ranges = append(links, l), append(ranges, vnis)
	}
	if len(links) == 0 {
		return nil
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string][]VNIFilterLink{"vnifilter": links})
	}
	var b strings.Builder
	for i, l := range links {
		fmt.Fprintf(&b, "\n%s vnifilter\n", l.Name)
		if len(ranges[i]) == 0 {
			b.WriteString("  vni (none)\n")
		}
		for _, r := range ranges[i] {
			fmt.Fprintf(&b, "  vni %s\n", r) // "10", "20-29", "30 group 239.1.1.30"
		}
	}
	_, err = io.WriteString(out, b.String())
	return err
}

// exitOnError ends the program as main does when err is not nil.
func exitOnError(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "inspect:", err)
		os.Exit(1)
	}
}
