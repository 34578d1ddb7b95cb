// Command inspect lists every vxlan link of a network namespace with its
// decoded configuration and its forwarding database: what
// `ip -d link show type vxlan` and `bridge fdb show` print, but typed, as a
// table or as JSON. Links made by iproute2 show as faithfully as links made
// by package vxlan.
//
//	sudo go run ./examples/inspect                 # this namespace
//	sudo go run ./examples/inspect -netns blue     # one made by `ip netns add blue`
//	sudo go run ./examples/inspect -netns /proc/1234/ns/net -json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

func main() {
	netns := flag.String("netns", "", "network namespace: a name under /run/netns or a path (default: this one)")
	asJSON := flag.Bool("json", false, "print JSON instead of a table")
	flag.Parse()
	if err := run(context.Background(), *netns, *asJSON, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "inspect:", err)
		os.Exit(1)
	}
	exitOnError(printVNIs(context.Background(), *netns, *asJSON, os.Stdout))
}

// Link is one vxlan link as printed in JSON.
type Link struct {
	Config vxlan.Config `json:"config"`
	FDB    []FDBEntry   `json:"fdb"`
}

// FDBEntry is one forwarding database entry as printed in JSON. Kind is
// vxlan.FDBEntry's: peer, extern_learn, permanent, static, learnt or other.
type FDBEntry struct {
	MAC       string `json:"mac"`
	Remote    string `json:"remote"`
	Kind      string `json:"kind"`
	VNI       uint32 `json:"vni,omitempty"`
	Port      uint16 `json:"port,omitempty"`
	Via       string `json:"via,omitempty"`
	Permanent bool   `json:"permanent"`
}

func run(ctx context.Context, netns string, asJSON bool, out io.Writer) error {
	c, configs, err := listVXLAN(ctx, netns)
	if err != nil {
		return err
	}
	defer c.Close()
	links := make([]Link, 0, len(configs))
	for _, cfg := range configs {
		entries, err := c.FDB(ctx, cfg.Name)
		if err != nil {
			return err
		}
		l := Link{Config: cfg, FDB: []FDBEntry{}}
		for _, e := range entries {
			via := e.Via
			if via == "" && e.ViaIndex != 0 {
				via = fmt.Sprintf("index %d", e.ViaIndex)
			}
			l.FDB = append(
				l.FDB,
				FDBEntry{
					MAC:       e.MAC.String(),
					Remote:    addrOrEmpty(e.Remote),
					Kind:      string(e.Kind()),
					VNI:       e.VNI,
					Port:      e.Port,
					Via:       via,
					Permanent: e.Permanent,
				},
			)
		}
		links = append(links, l)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(links)
	}
	return table(out, links)
}

func addrOrEmpty(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// table prints one block per link: its settings, then its FDB.
func table(out io.Writer, links []Link) error {
	if len(links) == 0 {
		_, err := fmt.Fprintln(out, "no vxlan links")
		return err
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for i, l := range links {
		if i > 0 {
			fmt.Fprintln(w)
		}
		c := l.Config
		fmt.Fprintf(w, "%s\tvni %d\tport %d\tstate %s\n", c.Name, c.VNI, c.Port, map[bool]string{true: "up", false: "down"}[c.Up])
		for _, kv := range settings(c) {
			fmt.Fprintf(w, "  %s\t%s\n", kv[0], kv[1])
		}
		if len(l.FDB) == 0 {
			fmt.Fprintln(w, "  fdb\t(empty)")
		}
		for _, e := range l.FDB {
			extra := ""
			if e.VNI != 0 {
				extra += fmt.Sprintf(" vni %d", e.VNI)
			}
			if e.Port != 0 {
				extra += fmt.Sprintf(" port %d", e.Port)
			}
			if e.Via != "" {
				extra += " via " + e.Via
			}
			fmt.Fprintf(w, "  fdb %s\t%s → %s%s\n", e.Kind, e.MAC, e.Remote, extra)
		}
	}
	return w.Flush()
}

// settings lists the settings worth showing: addresses and every value
// that is not the kernel's default.
func settings(c vxlan.Config) [][2]string {
	var s [][2]string
	add := func(k string, v any) { s = append(s, [2]string{k, fmt.Sprint(v)}) }
	if c.Group.IsValid() {
		if c.Group.IsMulticast() {
			add("group", c.Group)
		} else {
			add("remote", c.Group)
		}
	}
	if c.Local.IsValid() {
		add("local", c.Local)
	}
	switch {
	case c.Device != "":
		add("device", c.Device)
	case c.LinkNetNSID != nil:
		add("device", fmt.Sprintf("index %d in namespace id %d", c.DeviceIndex, *c.LinkNetNSID))
	case c.DeviceIndex != 0:
		add("device", fmt.Sprintf("index %d (gone)", c.DeviceIndex))
	}
	add("mtu", c.MTU)
	add("mac", c.HardwareAddr)
	if c.Learning != nil {
		add("learning", *c.Learning)
	}
	if c.Ageing != nil {
		add("ageing", *c.Ageing/time.Second*time.Second)
	}
	if !c.SrcPorts.IsZero() {
		add("srcports", fmt.Sprintf("%d-%d", c.SrcPorts.Low, c.SrcPorts.High))
	}
	switch {
	case c.TTLInherit:
		add("ttl", "inherit")
	case c.TTL != 0:
		add("ttl", c.TTL)
	}
	if c.TOS == 1 {
		add("tos", "inherit")
	} else if c.TOS != 0 {
		add("tos", fmt.Sprintf("%#x", c.TOS))
	}
	if c.DF != vxlan.DFUnset {
		add("df", c.DF)
	}
	if c.Label != 0 {
		add("flowlabel", fmt.Sprintf("%#x", c.Label))
	}
	if c.Limit != 0 {
		add("limit", c.Limit)
	}
	var flags []string
	for _, f := range []struct {
		name string
		on   bool
	}{{"proxy", c.Proxy}, {"rsc", c.RSC}, {"l2miss", c.L2Miss}, {"l3miss", c.L3Miss}, {"external", c.CollectMetadata},
		{"vnifilter", c.VNIFilter}, {"udp6zerocsumtx", c.UDPZeroChecksum6TX}, {"udp6zerocsumrx", c.UDPZeroChecksum6RX},
		{"remcsumtx", c.RemoteChecksumTX}, {"remcsumrx", c.RemoteChecksumRX}, {"remcsum_nopartial", c.RemoteChecksumNoPartial},
		{"gbp", c.GBP}, {"gpe", c.GPE}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	if c.UDPChecksum != nil && !*c.UDPChecksum {
		flags = append(flags, "noudpcsum")
	}
	if c.LocalBypass != nil && !*c.LocalBypass {
		flags = append(flags, "nolocalbypass")
	}
	if len(flags) > 0 {
		add("flags", strings.Join(flags, " "))
	}
	if c.Alias != "" {
		add("alias", c.Alias)
	}
	return s
}

// listVXLAN dials the namespace (this one if netns is empty) and lists its
// vxlan links; the caller closes the client.
func listVXLAN(ctx context.Context, netns string) (*vxlan.Client, []vxlan.Config, error) {
	var opts []rtlink.DialOption
	if netns != "" {
		opts = append(opts, rtlink.WithNetNSPath(netns))
	}
	c, err := vxlan.Dial(opts...)
	if err != nil {
		return nil, nil, err
	}
	configs, err := c.List(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, configs, nil
}
