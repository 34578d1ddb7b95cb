package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// The IPAM plugin's side of package cni: command vxlan-ipam, a CNI IPAM
// plugin over package ipam's allocator, so that containers of CNI runtimes
// get addresses on a segment by the same rules as the Docker driver's
// (probe the segment first, an order of the host's own), with leases in
// files on this host.

// IPAMPluginType is the IPAM plugin's type, the name it is installed
// under in the CNI plugin directory.
const IPAMPluginType = "vxlan-ipam"

// defaultIPAMDataDir holds, per network, the IPAM plugin's lock file and
// one lease file per address.
const defaultIPAMDataDir = "/var/lib/cni/vxlan-ipam"

// ipamRange is one subnet of the IPAM configuration.
type ipamRange struct {
	Subnet netip.Prefix
	// Range is where addresses are picked from: a prefix inside Subnet,
	// or Subnet itself.
	Range netip.Prefix
	// Gateway is the result's gateway: the subnet's first address unless
	// the configuration names one. It is never handed out.
	Gateway netip.Addr
}

// ipamConf is the IPAM plugin's configuration: the network's "ipam"
// section, what it takes from the enclosing plugin, and the addresses the
// runtime asks for.
type ipamConf struct {
	CNIVersion string
	// Network is the network's name: leases are kept per network.
	Network string
	Ranges  []ipamRange
	Routes  []*types.Route
	DataDir string
	// Link is the link probes go out through; empty when the enclosing
	// plugin is the vxlan plugin, whose segment link is resolved on the
	// host (Derive says so).
	Link string
	// Derive is set when Link comes from the vxlan plugin's network.
	Derive bool
	// Requested are the addresses the runtime asks for, at most one per
	// range, in the ranges' order (invalid where none is asked for).
	Requested []netip.Addr
}

// ipamRangeJSON is a range as the configuration gives it.
type ipamRangeJSON struct {
	Subnet  string `json:"subnet"`
	Range   string `json:"range,omitempty"`
	Gateway string `json:"gateway,omitempty"`
}

// ipamNetConfJSON is what the IPAM plugin reads of the network
// configuration.
type ipamNetConfJSON struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	// Bridge is CNI's bridge plugin's bridge; Master CNI's macvlan
	// plugin's parent.
	Bridge string `json:"bridge"`
	Master string `json:"master"`
	IPAM   struct {
		Type string `json:"type"`
		ipamRangeJSON
		Ranges  []ipamRangeJSON `json:"ranges"`
		Routes  []*types.Route  `json:"routes"`
		DataDir string          `json:"dataDir"`
		Link    string          `json:"link"`
	} `json:"ipam"`
	RuntimeConfig struct {
		IPs []string `json:"ips"`
	} `json:"runtimeConfig"`
	Args struct {
		CNI struct {
			IPs []string `json:"ips"`
		} `json:"cni"`
	} `json:"args"`
}

// cniBridgeDefault is the bridge of CNI's bridge plugin when its
// configuration names none.
const cniBridgeDefault = "cni0"

// parseIPAMConfig reads the IPAM plugin's configuration from the network
// configuration and CNI_ARGS. The addresses asked for come from the
// runtime configuration's "ips" (the ips capability), the configuration's
// args.cni.ips, or CNI_ARGS IP= (addresses separated by commas), in this
// order of preference; each may carry a prefix length, which is ignored.
func parseIPAMConfig(stdin []byte, cniArgs string) (*ipamConf, error) {
	var j ipamNetConfJSON
	if err := json.Unmarshal(stdin, &j); err != nil {
		return nil, invalidConfig("network configuration: %v", err)
	}
	if j.Name == "" {
		return nil, invalidConfig("network configuration: no name")
	}
	if strings.ContainsAny(j.Name, "/\x00") || j.Name == "." || j.Name == ".." {
		return nil, invalidConfig("network name %q: not a file name", j.Name)
	}
	c := &ipamConf{CNIVersion: j.CNIVersion, Network: j.Name, Routes: j.IPAM.Routes, DataDir: j.IPAM.DataDir, Link: j.IPAM.Link}
	if c.DataDir == "" {
		c.DataDir = defaultIPAMDataDir
	}
	if !filepath.IsAbs(c.DataDir) {
		return nil, invalidConfig("ipam dataDir %q: not an absolute path", c.DataDir)
	}
	ranges := j.IPAM.Ranges
	if j.IPAM.Subnet != "" {
		ranges = append([]ipamRangeJSON{j.IPAM.ipamRangeJSON}, ranges...)
	} else if j.IPAM.Range != "" || j.IPAM.Gateway != "" {
		return nil, invalidConfig("ipam: range or gateway without a subnet")
	}
	if len(ranges) == 0 {
		return nil, invalidConfig("ipam: no subnet (\"subnet\", or \"ranges\": [{\"subnet\": ...}, ...])")
	}
	for _, rj := range ranges {
		r, err := parseIPAMRange(rj)
		if err != nil {
			return nil, err
		}
		for _, o := range c.Ranges {
			if o.Subnet.Overlaps(r.Subnet) {
				return nil, invalidConfig("ipam: subnets %s and %s overlap", o.Subnet, r.Subnet)
			}
		}
		c.Ranges = append(c.Ranges, r)
	}
	if c.Link == "" {
		switch j.Type {
		case pluginType:
			c.Derive = true
		case "bridge":
			c.Link = j.Bridge
			if c.Link == "" {
				c.Link = cniBridgeDefault
			}
		case "macvlan":
			c.Link = j.Master
		}
		if c.Link == "" && !c.Derive {
			return nil, invalidConfig("ipam: no link to probe the segment through: set \"link\" " +
				"(it is found by itself under the vxlan, bridge and macvlan plugins; macvlan's needs \"master\")")
		}
	}
	requested, err := requestedIPs(j, cniArgs)
	if err != nil {
		return nil, err
	}
	c.Requested = make([]netip.Addr, len(c.Ranges))
	for _, a := range requested {
		i := c.rangeOf(a)
		if i < 0 {
			return nil, invalidConfig("requested address %s: in none of the subnets %s", a, c.subnets())
		}
		if c.Requested[i].IsValid() {
			return nil, invalidConfig("requested addresses %s and %s: two in the subnet %s", c.Requested[i], a, c.Ranges[i].Subnet)
		}
		c.Requested[i] = a
	}
	return c, nil
}

// pluginType is the vxlan plugin's network type.
const pluginType = "vxlan"

// parseIPAMRange reads and checks one range.
func parseIPAMRange(rj ipamRangeJSON) (ipamRange, error) {
	var r ipamRange
	var err error
	if r.Subnet, err = netip.ParsePrefix(rj.Subnet); err != nil || r.Subnet.Addr().Zone() != "" {
		return r, invalidConfig("ipam subnet %q: not a prefix such as 198.18.0.0/24 or fd00::/64", rj.Subnet)
	}
	r.Subnet = r.Subnet.Masked()
	r.Range = r.Subnet
	if rj.Range != "" {
		if r.Range, err = netip.ParsePrefix(rj.Range); err != nil {
			return r, invalidConfig("ipam range %q: not a prefix inside the subnet %s", rj.Range, r.Subnet)
		}
		r.Range = r.Range.Masked()
		if r.Range.Addr().Is4() != r.Subnet.Addr().Is4() || r.Range.Bits() < r.Subnet.Bits() || !r.Subnet.Contains(r.Range.Addr()) {
			return r, invalidConfig("ipam range %s: not a prefix inside the subnet %s", r.Range, r.Subnet)
		}
	}
	r.Gateway = r.Subnet.Addr().Next()
	if rj.Gateway != "" {
		if r.Gateway, err = netip.ParseAddr(rj.Gateway); err != nil || !r.Subnet.Contains(r.Gateway) {
			return r, invalidConfig("ipam gateway %q: not an address in the subnet %s", rj.Gateway, r.Subnet)
		}
	}
	return r, nil
}

// requestedIPs returns the addresses the runtime asks for.
func requestedIPs(j ipamNetConfJSON, cniArgs string) ([]netip.Addr, error) {
	list := j.RuntimeConfig.IPs
	if len(list) == 0 {
		list = j.Args.CNI.IPs
	}
	if len(list) == 0 {
		for _, kv := range strings.Split(cniArgs, ";") {
			if k, v, ok := strings.Cut(kv, "="); ok && k == "IP" && v != "" {
				list = strings.Split(v, ",")
			}
		}
	}
	var out []netip.Addr
	for _, s := range list {
		s = strings.TrimSpace(s)
		a, err := netip.ParseAddr(s)
		if err != nil {
			p, perr := netip.ParsePrefix(s)
			if perr != nil {
				return nil, invalidConfig("requested address %q: not an IP address", s)
			}
			a = p.Addr()
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

// rangeOf returns the index of the range whose subnet holds a, or -1.
func (c *ipamConf) rangeOf(a netip.Addr) int {
	for i, r := range c.Ranges {
		if r.Subnet.Contains(a) {
			return i
		}
	}
	return -1
}

func (c *ipamConf) subnets() string {
	s := make([]string, len(c.Ranges))
	for i, r := range c.Ranges {
		s[i] = r.Subnet.String()
	}
	return strings.Join(s, ", ")
}

// networkDir is the network's directory of leases.
func (c *ipamConf) networkDir() string { return filepath.Join(c.DataDir, c.Network) }

// configError is a CNI error of code 7 (invalid network configuration).
func invalidConfig(format string, a ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf(format, a...), "")
}
