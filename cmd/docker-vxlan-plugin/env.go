package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker"
)

// envFlags maps environment variables to the flags they set when the
// command line does not: a managed plugin gets its settings as environment
// variables (docker plugin set NAME VTEPDEV=eth1), a legacy plugin from its
// command line, so the same binary serves both.
var envFlags = map[string]string{
	"SCOPE":         "scope",
	"VTEPDEV":       "vtepdev",
	"DEBUG":         "d",
	"PEERS":         "peers",
	"VNI_RANGE":     "vni-range",
	"CLEAN_ORPHANS": "clean-orphans",
	"STATE_DIR":     "state-dir",

	"MEMBERSHIP_KEY":   "membership-key",
	"MEMBERSHIP_PORT":  "membership-port",
	"MEMBERSHIP_SEEDS": "membership-seeds",
}

// applyEnv sets every flag of envFlags that the command line left unset
// from its environment variable, if that is set and not empty.
func applyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for env, name := range envFlags {
		v := strings.TrimSpace(os.Getenv(env))
		if v == "" || set[name] || fs.Lookup(name) == nil {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("environment variable %s=%s (flag -%s): %w", env, v, name, err)
		}
	}
	return nil
}

// swarmFlags are the flags of a global-scope driver's swarm settings.
type swarmFlags struct {
	peers, vniRange *string

	memberKey, memberSeeds *string
	memberPort             *int
}

// addSwarmFlags registers -peers and -vni-range on fs.
func addSwarmFlags(fs *flag.FlagSet) *swarmFlags {
	return &swarmFlags{
		peers: fs.String(
			"peers",
			"",
			"VTEP addresses of swarm nodes, comma-separated, that every vxlan network without Group floods to, besides the "+
				"nodes dockerd announces (it announces only nodes joining after the plugin registered); this node's own "+
				"address is skipped",
		),
		vniRange: fs.String(
			"vni-range",
			docker.DefaultVNIRange.String(),
			"VNIs a swarm manager allocates to global networks given without VxlanId, LOW-HIGH; the default stays below "+
				"4096, where Docker's overlay driver (and swarm's ingress) allocates",
		),
		memberKey: fs.String(
			"membership-key",
			"",
			"swarm-wide key of the membership the plugins keep among themselves (data-path addresses, nodes that join before "+
				"the plugin or die): 16, 24 or 32 bytes in base64, the same on every node (head -c 32 /dev/urandom | base64); "+
				"empty: no membership",
		),
		memberPort: fs.Int("membership-port", 0, fmt.Sprintf("TCP and UDP port of the membership on the node's advertise address (default %d)",
			docker.DefaultMembershipPort)),
		memberSeeds: fs.String(
			"membership-seeds",
			"",
			"members to join at start, comma-separated addresses (ADDR or ADDR:PORT): on a swarm whose nodes joined before the "+
				"plugin was enabled, one node's advertise address",
		),
	}
}

// membership returns the membership flags' values as the driver takes them.
func (s *swarmFlags) membership() (docker.MembershipConfig, error) {
	mc := docker.MembershipConfig{Port: *s.memberPort}
	for _, p := range strings.Split(*s.memberSeeds, ",") {
		if p = strings.TrimSpace(p); p != "" {
			mc.Seeds = append(mc.Seeds, p)
		}
	}
	if *s.memberKey != "" {
		key, err := docker.ParseMembershipKey(*s.memberKey)
		if err != nil {
			return mc, fmt.Errorf("-membership-key (MEMBERSHIP_KEY): %w", err)
		}
		mc.Key = key
	}
	return mc, nil
}

// config returns the flags' values as the driver takes them.
func (s *swarmFlags) config() (peers []netip.Addr, vnis docker.VNIRange, err error) {
	for _, p := range strings.Split(*s.peers, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, vnis, fmt.Errorf("-peers (PEERS) %q: %q is not an IP address; accepted: comma-separated IPv4 or IPv6 addresses", *s.peers, p)
		}
		peers = append(peers, a)
	}
	vnis, err = docker.ParseVNIRange(*s.vniRange)
	if err != nil {
		return nil, vnis, fmt.Errorf("-vni-range (VNI_RANGE): %w", err)
	}
	return peers, vnis, nil
}
