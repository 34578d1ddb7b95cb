package plugin

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// optionDef is one -o option: its canonical name (keys match it without
// regard to case), the text of the README's option table, and how its value
// is applied.
type optionDef struct {
	Name     string
	Meaning  string
	Default  string
	Accepted string
	apply    func(s *NetworkSpec, v string, set *optionSet) error
}

// optionSet records the options given, for the checks between options.
type optionSet struct {
	portLow, portHigh *uint16
	age               *time.Duration
	noAge             bool
}

// Options lists every -o network option, in the order of the README table.
var Options = []optionDef{
	{"VxlanId", "VXLAN Network Identifier (VNI) of the network", "none: required", "0..16777215, decimal or 0x-hex",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			n, err := parseUint(v, 24)
			s.VXLAN.VNI = uint32(n)
			return err
		}},
	{"mode", "how containers attach to the vxlan: a veth into a bridge, or a macvlan link on the vxlan link itself (no bridge; the gateway is never put on the host)", "bridge", "bridge or macvlan",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			switch strings.ToLower(v) {
			case "bridge":
				s.Kind = KindBridge
			case "macvlan":
				s.Kind = KindMacvlan
			default:
				return fmt.Errorf("unknown mode")
			}
			return nil
		}},
	{"VtepDev", "underlay device of the tunnel endpoint (VTEP); a list is tried in order and the first that exists on the host wins", "the daemon's -vtepdev", "interface names, comma-separated",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			names, err := parseNameList(v)
			s.VTEPCandidates = names
			return err
		}},
	{"SrcAddr", "source address of outgoing VXLAN packets", "chosen by the kernel's routing", "an IPv4 or IPv6 unicast address",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			a, err := parseAddr(v)
			s.VXLAN.Local = a
			return err
		}},
	{"Group", "multicast group to join, or one unicast remote VTEP", "none", "an IPv4 or IPv6 address; a multicast group needs VtepDev",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			a, err := parseAddr(v)
			s.VXLAN.Group = a
			return err
		}},
	{"Peers", "remote VTEPs to flood to by unicast (head-end replication), so the underlay needs no multicast", "none", "comma-separated IPv4 or IPv6 unicast addresses",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			for _, f := range strings.Split(v, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				a, err := parseAddr(f)
				if err != nil {
					return err
				}
				if a.IsMulticast() || a.IsUnspecified() {
					return fmt.Errorf("%s is not a unicast address", a)
				}
				s.Peers = append(s.Peers, a)
			}
			return nil
		}},
	{"Port", "UDP destination port", "4789 (IANA)", "1..65535",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			n, err := parseRange(v, 1, 65535)
			s.VXLAN.Port = uint16(n)
			return err
		}},
	{"PortLow", "lowest UDP source port", "kernel's choice", "1..65535, with PortHigh, not above it",
		func(s *NetworkSpec, v string, set *optionSet) error {
			n, err := parseRange(v, 1, 65535)
			set.portLow = vxlan.Ptr(uint16(n))
			return err
		}},
	{"PortHigh", "highest UDP source port", "kernel's choice", "1..65535, with PortLow, not below it",
		func(s *NetworkSpec, v string, set *optionSet) error {
			n, err := parseRange(v, 1, 65535)
			set.portHigh = vxlan.Ptr(uint16(n))
			return err
		}},
	{"TTL", "TTL of outgoing VXLAN packets", "0: the route's", "0..255",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			n, err := parseRange(v, 0, 255)
			s.VXLAN.TTL = uint8(n)
			return err
		}},
	{"TOS", "TOS of outgoing VXLAN packets", "0", "0..255 or inherit",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			if strings.EqualFold(v, "inherit") {
				s.VXLAN.TOS = 1
				return nil
			}
			n, err := parseRange(v, 0, 255)
			s.VXLAN.TOS = uint8(n)
			return err
		}},
	{"Learning", "enter unknown source MAC addresses into the FDB", "true", "true or false",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			b, err := parseBool(v)
			s.VXLAN.Learning = vxlan.Ptr(b)
			return err
		}},
	{"Proxy", "answer ARP and ND from the neighbour table (ARP proxy)", "false", "true or false", boolOption(func(s *NetworkSpec) *bool { return &s.VXLAN.Proxy })},
	{"RSC", "route short circuit", "false", "true or false", boolOption(func(s *NetworkSpec) *bool { return &s.VXLAN.RSC })},
	{"L2miss", "netlink notifications for unknown MAC addresses", "false", "true or false", boolOption(func(s *NetworkSpec) *bool { return &s.VXLAN.L2Miss })},
	{"L3miss", "netlink notifications for unknown IP addresses", "false", "true or false", boolOption(func(s *NetworkSpec) *bool { return &s.VXLAN.L3Miss })},
	{"GBP", "VXLAN Group Based Policy extension", "false", "true or false", boolOption(func(s *NetworkSpec) *bool { return &s.VXLAN.GBP })},
	{"Age", "lifetime of learnt FDB entries, in seconds", "300", "1..4294967",
		func(s *NetworkSpec, v string, set *optionSet) error {
			n, err := parseRange(v, 1, uint64(vxlan.MaxAgeing/time.Second))
			set.age = vxlan.Ptr(time.Duration(n) * time.Second)
			return err
		}},
	{"NoAge", "keep learnt FDB entries as long as the kernel can: 4294967 s, about 49.7 days (the kernel turns an ageing of 0 into 300 s, so \"never\" does not exist)", "false", "true or false",
		func(s *NetworkSpec, v string, set *optionSet) error {
			b, err := parseBool(v)
			set.noAge = b
			return err
		}},
	{"Limit", "maximum number of FDB entries", "0: no limit", "0..4294967295",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			n, err := parseUint(v, 32)
			s.VXLAN.Limit = uint32(n)
			return err
		}},
	{"vxlanName", "name of the vxlan interface", "vx_ and the first 12 characters of the network ID", "an interface name: 1 to 15 bytes, no '/', ':' or spaces",
		func(s *NetworkSpec, v string, _ *optionSet) error { s.VXLAN.Name = v; return checkIfName(v) }},
	{"vxlanMTU", "MTU of the vxlan interface; also the containers' MTU unless bridgeMTU is set", "the VTEP device's MTU minus 50 (IPv4 underlay) or 70 (IPv6)", "68..65535",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			n, err := parseRange(v, 68, 65535)
			s.VXLAN.MTU = int(n)
			return err
		}},
	{"vxlanHardwareAddr", "MAC address of the vxlan interface", "random", "a unicast MAC address",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			m, err := parseMAC(v)
			s.VXLAN.HardwareAddr = m
			return err
		}},
	{"vxlanTxQLen", "transmit queue length of the vxlan interface", "kernel default", "0..4294967295",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			n, err := parseUint(v, 32)
			s.VXLAN.TxQueueLen = int(n)
			return err
		}},
	{"bridgeName", "name of the bridge; an existing bridge of that name is used and left in place", "br_ and the first 12 characters of the network ID", "an interface name: 1 to 15 bytes, no '/', ':' or spaces",
		func(s *NetworkSpec, v string, _ *optionSet) error { s.Bridge.Name = v; return checkIfName(v) }},
	{"bridgeMTU", "MTU of the bridge and of the containers' interfaces", "the containers' MTU", "68..65535",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			n, err := parseRange(v, 68, 65535)
			s.Bridge.MTU = int(n)
			return err
		}},
	{"bridgeHardwareAddr", "MAC address of the bridge", "random", "a unicast MAC address",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			m, err := parseMAC(v)
			s.Bridge.HardwareAddr = m
			return err
		}},
	{"bridgeTXQLen", "transmit queue length of the bridge", "kernel default", "0..4294967295",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			n, err := parseUint(v, 32)
			s.Bridge.TxQueueLen = int(n)
			return err
		}},
	{"HostGateway", "put the network's gateway addresses on the bridge, so the host reaches its containers (bridge mode only)", "true in local scope, false in global scope", "true or false",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			b, err := parseBool(v)
			s.HostGateway = vxlan.Ptr(b)
			return err
		}},
	{"parent", "a macvlan network on a host interface instead of a vxlan (give no VxlanId): the first name that exists on this host wins; name.id is an 802.1Q sub-interface, made when missing if its master exists", "none: an isolated network on this host (local scope only)", "interface names, comma-separated, spaces allowed",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			names, err := parseNameList(v)
			s.Parent.Candidates = names
			return err
		}},
	{"parent-file", "a TOML file on each host whose [macvlan] table names the parent: parent = \"eth1\" or a list; read on each host, so hosts may differ", "none", "an absolute path",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			if !strings.HasPrefix(v, "/") {
				return fmt.Errorf("not an absolute path")
			}
			s.Parent.File = v
			return nil
		}},
	{"macvlan_mode", "macvlan mode of the containers' links (macvlan mode and parent networks)", "bridge", "bridge, private, vepa or passthru",
		func(s *NetworkSpec, v string, _ *optionSet) error {
			switch strings.ToLower(v) {
			case "bridge", "private", "vepa", "passthru":
				s.MacvlanMode = strings.ToLower(v)
				return nil
			}
			return fmt.Errorf("unknown macvlan mode")
		}},
}

// optionKinds says which kinds of network take each option.
var optionKinds = func() map[string][]Kind {
	m := map[string][]Kind{}
	vx := []Kind{KindBridge, KindMacvlan}
	for _, o := range []string{"VxlanId", "mode", "VtepDev", "SrcAddr", "Group", "Peers", "Port", "PortLow", "PortHigh",
		"TTL", "TOS", "Learning", "Proxy", "RSC", "L2miss", "L3miss", "GBP", "Age", "NoAge", "Limit",
		"vxlanName", "vxlanMTU", "vxlanHardwareAddr", "vxlanTxQLen"} {
		m[o] = vx
	}
	for _, o := range []string{"bridgeName", "bridgeMTU", "bridgeHardwareAddr", "bridgeTXQLen", "HostGateway"} {
		m[o] = []Kind{KindBridge}
	}
	m["parent"] = []Kind{KindParent}
	m["parent-file"] = []Kind{KindParent}
	m["macvlan_mode"] = []Kind{KindMacvlan, KindParent}
	return m
}()

// kindNames describes kinds for the README and for errors.
var kindNames = map[Kind]string{KindBridge: "vxlan, bridge mode", KindMacvlan: "vxlan, mode=macvlan", KindParent: "parent (no VxlanId)"}

func kindsText(kinds []Kind) string {
	var parts []string
	for _, k := range kinds {
		parts = append(parts, kindNames[k])
	}
	return strings.Join(parts, "; ")
}

func boolOption(field func(*NetworkSpec) *bool) func(*NetworkSpec, string, *optionSet) error {
	return func(s *NetworkSpec, v string, _ *optionSet) error {
		b, err := parseBool(v)
		*field(s) = b
		return err
	}
}

// OptionError reports a bad -o option; its text is what the user of
// `docker network create` reads.
type OptionError struct {
	Option   string // the option as the user typed it
	Value    string
	Problem  string
	Accepted string
}

func (e *OptionError) Error() string {
	s := "option " + quoteOddName(e.Option)
	if e.Value != "" {
		s += "=" + e.Value
	}
	s += ": " + e.Problem
	if e.Accepted != "" {
		s += "; accepted: " + e.Accepted
	}
	return s
}

// quoteOddName quotes an option name that is empty or holds characters
// other than letters, digits, '-', '_' and '.', so the error reads clearly.
func quoteOddName(name string) string {
	if name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == "" {
		return name
	}
	return strconv.Quote(name)
}

func findOption(key string) *optionDef {
	for i := range Options {
		if strings.EqualFold(Options[i].Name, key) {
			return &Options[i]
		}
	}
	return nil
}

func optionNames() string {
	names := make([]string, len(Options))
	for i, o := range Options {
		names[i] = o.Name
	}
	return strings.Join(names, " ")
}

// ParseOptions turns a network's -o options (keys in any case) into a
// NetworkSpec. Every value is checked, then the options against each
// other; the first problem is returned as an *OptionError naming the option.
func ParseOptions(opts map[string]string) (*NetworkSpec, error) {
	s := &NetworkSpec{}
	var set optionSet
	typed := map[string]string{} // canonical name -> key as typed
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report problems in a stable order
	for _, k := range keys {
		v := strings.TrimSpace(opts[k])
		if strings.TrimSpace(k) == "" {
			return nil, &OptionError{Option: k, Value: v, Problem: "an option needs a name (-o NAME=VALUE)", Accepted: optionNames()}
		}
		def := findOption(k)
		if def == nil {
			return nil, &OptionError{Option: k, Problem: "unknown option", Accepted: optionNames()}
		}
		if prev, dup := typed[def.Name]; dup {
			return nil, &OptionError{Option: k, Value: v, Problem: "given twice (also as " + prev + ")"}
		}
		typed[def.Name] = k
		if err := def.apply(s, v, &set); err != nil {
			return nil, &OptionError{Option: k, Value: v, Problem: err.Error(), Accepted: def.Accepted}
		}
	}
	name := func(canonical string) string {
		if k, ok := typed[canonical]; ok {
			return k
		}
		return canonical
	}
	// The kind: a VxlanId makes a vxlan network (bridge mode unless mode
	// says macvlan); without one, any vxlan option is a forgotten VxlanId,
	// and otherwise it is a macvlan network on a parent interface.
	if _, ok := typed["VxlanId"]; ok {
		if s.Kind == "" {
			s.Kind = KindBridge
		}
	} else {
		_, parent := typed["parent"]
		_, parentFile := typed["parent-file"]
		for _, k := range keys {
			if kinds := optionKinds[findOption(k).Name]; !parent && !parentFile && !slices.Contains(kinds, KindParent) {
				return nil, &OptionError{Option: "VxlanId", Problem: fmt.Sprintf("missing: option %s is for vxlan networks, which need their VNI", k), Accepted: findOption("VxlanId").Accepted}
			}
		}
		s.Kind = KindParent
	}
	for _, k := range keys {
		if kinds := optionKinds[findOption(k).Name]; !slices.Contains(kinds, s.Kind) {
			return nil, &OptionError{Option: k, Value: opts[k], Problem: "not for a network of kind " + kindNames[s.Kind], Accepted: "networks of kind " + kindsText(kinds)}
		}
	}
	if s.Kind != KindBridge && s.MacvlanMode == "" {
		s.MacvlanMode = "bridge"
	}
	if s.Kind == KindParent && len(s.Parent.Candidates) > 0 && s.Parent.File != "" {
		return nil, &OptionError{Option: name("parent-file"), Value: s.Parent.File, Problem: "given with parent: give one of them"}
	}
	switch {
	case set.noAge && set.age != nil:
		return nil, &OptionError{Option: name("Age"), Value: opts[name("Age")], Problem: "contradicts NoAge=true: give one of them"}
	case set.noAge:
		s.VXLAN.Ageing = vxlan.Ptr(vxlan.MaxAgeing)
	case set.age != nil:
		s.VXLAN.Ageing = set.age
	}
	switch {
	case (set.portLow == nil) != (set.portHigh == nil):
		missing := "PortHigh"
		if set.portLow == nil {
			missing = "PortLow"
		}
		return nil, &OptionError{Option: missing, Problem: "missing: PortLow and PortHigh go together", Accepted: "both, 1..65535, PortLow <= PortHigh"}
	case set.portLow != nil && *set.portLow > *set.portHigh:
		return nil, &OptionError{Option: name("PortLow"), Value: fmt.Sprint(*set.portLow), Problem: fmt.Sprintf("above PortHigh=%d", *set.portHigh), Accepted: "PortLow <= PortHigh"}
	case set.portLow != nil:
		s.VXLAN.SrcPorts = vxlan.PortRange{Low: *set.portLow, High: *set.portHigh}
	}
	g, l := s.VXLAN.Group, s.VXLAN.Local
	if g.IsValid() && l.IsValid() && g.Is4() != l.Is4() {
		return nil, &OptionError{Option: name("SrcAddr"), Value: l.String(), Problem: fmt.Sprintf("not of the family of Group=%s", g), Accepted: "an address of the underlay's family"}
	}
	if l.IsValid() && (l.IsMulticast() || l.IsUnspecified()) {
		return nil, &OptionError{Option: name("SrcAddr"), Value: l.String(), Problem: "not a unicast address", Accepted: findOption("SrcAddr").Accepted}
	}
	for _, p := range s.Peers {
		if p.Is6() != s.UnderlayIPv6() {
			return nil, &OptionError{Option: name("Peers"), Value: opts[name("Peers")], Problem: "mixes IPv4 and IPv6 (or differs from Group/SrcAddr): a vxlan link has one underlay family", Accepted: "addresses of one family"}
		}
	}
	return s, nil
}
