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
	"VTEP_FILTER":   "vtep-filter",
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
	}
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
