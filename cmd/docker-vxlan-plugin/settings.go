package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker"
)

// setting is one flag of the daemon, with the environment variable that
// sets it when the command line does not, and the name of the managed
// plugin's setting (`docker plugin set NAME SETTING=VALUE`) that sets it
// in a managed plugin.
type setting struct {
	// Flag is the flag's name, without the dash.
	Flag string
	// Env is the environment variable the daemon reads it from when the
	// command line does not set it: envPrefix and the flag's name in upper
	// case. Empty: the flag has none (it is an action, such as -version).
	Env string
	// Managed is the managed plugin's setting (an "env" entry of
	// managed-plugin/config.json), read only with -managed-plugin; empty
	// when a managed plugin does not offer it.
	Managed string
}

// envPrefix is the prefix of every environment variable the daemon reads
// (but systemd's LISTEN_* of socket activation), so a variable of an
// operator's shell such as DEBUG cannot change it.
const envPrefix = "DVP_"

// settings is the one table of the daemon's flags, their environment
// variables and the managed plugin's settings. Every flag of daemonFlags
// has a row (a test checks it, and that each is documented): a new flag
// adds its row here and to the reference table of docs/plugin.md
// (go test ./cmd/docker-vxlan-plugin -run TestDocsSettingsTable -update-docs).
var settings = []setting{
	{Flag: "d", Env: "DVP_DEBUG", Managed: "DEBUG"},
	{Flag: "scope", Env: "DVP_SCOPE", Managed: "SCOPE"},
	{Flag: "vtepdev", Env: "DVP_VTEPDEV", Managed: "VTEPDEV"},
	{Flag: "name", Env: "DVP_NAME"},
	{Flag: "socket", Env: "DVP_SOCKET"},
	{Flag: "state-dir", Env: "DVP_STATE_DIR"},
	{Flag: "clean-orphans", Env: "DVP_CLEAN_ORPHANS", Managed: "CLEAN_ORPHANS"},
	{Flag: "parent-dir", Env: "DVP_PARENT_DIR"},
	{Flag: "call-timeout", Env: "DVP_CALL_TIMEOUT"},
	{Flag: "log-json", Env: "DVP_LOG_JSON"},
	{Flag: "peers", Env: "DVP_PEERS", Managed: "PEERS"},
	{Flag: "vni-range", Env: "DVP_VNI_RANGE", Managed: "VNI_RANGE"},
	{Flag: "metrics-addr", Env: "DVP_METRICS_ADDR", Managed: "METRICS_ADDR"},
	{Flag: "vtep-filter", Env: "DVP_VTEP_FILTER", Managed: "VTEP_FILTER"},
	{Flag: "membership-key", Env: "DVP_MEMBERSHIP_KEY", Managed: "MEMBERSHIP_KEY"},
	{Flag: "membership-port", Env: "DVP_MEMBERSHIP_PORT", Managed: "MEMBERSHIP_PORT"},
	{Flag: "membership-seeds", Env: "DVP_MEMBERSHIP_SEEDS", Managed: "MEMBERSHIP_SEEDS"},
	{Flag: "version"},
	{Flag: "managed-plugin"},
}

// settingOf returns the row of flag name.
func settingOf(name string) (setting, bool) {
	for _, s := range settings {
		if s.Flag == name {
			return s, true
		}
	}
	return setting{}, false
}

// envName is how an error names the variable that sets flag name: its
// environment variable, or its managed plugin's setting with
// -managed-plugin.
func envName(name string, managed bool) string {
	s, _ := settingOf(name)
	if managed {
		return s.Managed
	}
	return s.Env
}

// applyEnv sets every flag that the command line left unset from its
// environment variable (with managed, from its managed plugin's setting
// instead), if that is set and not empty.
func applyEnv(fs *flag.FlagSet, managed bool) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, s := range settings {
		env := s.Env
		if managed {
			env = s.Managed
		}
		v := strings.TrimSpace(os.Getenv(env))
		if env == "" || v == "" || set[s.Flag] || fs.Lookup(s.Flag) == nil {
			continue
		}
		if err := fs.Set(s.Flag, v); err != nil {
			return fmt.Errorf("environment variable %s=%s (flag -%s): %w", env, v, s.Flag, err)
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

// membership returns the membership flags' values as the driver takes
// them; managed says which variables an error names.
func (s *swarmFlags) membership(managed bool) (docker.MembershipConfig, error) {
	mc := docker.MembershipConfig{Port: *s.memberPort}
	for _, p := range strings.Split(*s.memberSeeds, ",") {
		if p = strings.TrimSpace(p); p != "" {
			mc.Seeds = append(mc.Seeds, p)
		}
	}
	if *s.memberKey != "" {
		key, err := docker.ParseMembershipKey(*s.memberKey)
		if err != nil {
			return mc, fmt.Errorf("-membership-key (%s): %w", envName("membership-key", managed), err)
		}
		mc.Key = key
	}
	return mc, nil
}

// config returns the flags' values as the driver takes them; managed says
// which variables an error names.
func (s *swarmFlags) config(managed bool) (peers []netip.Addr, vnis docker.VNIRange, err error) {
	for _, p := range strings.Split(*s.peers, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, vnis, fmt.Errorf("-peers (%s) %q: %q is not an IP address; accepted: comma-separated IPv4 or IPv6 addresses",
				envName("peers", managed), *s.peers, p)
		}
		peers = append(peers, a)
	}
	vnis, err = docker.ParseVNIRange(*s.vniRange)
	if err != nil {
		return nil, vnis, fmt.Errorf("-vni-range (%s): %w", envName("vni-range", managed), err)
	}
	return peers, vnis, nil
}
