package fabric

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Option is one network option: its name, the kinds of network that take
// it, its documentation and how its value is read. The table of options
// (see [Options]) is the only place an option is declared: the parser, the
// checks of which network takes which option, the error texts and the
// option table of docs/options.md all read it.
type Option struct {
	// Name is the canonical name; keys match it without regard to case.
	Name string
	// Kinds are the kinds of network that take the option.
	Kinds []NetworkKind
	// Meaning, Default and Accepted document the option. Accepted is also
	// the "accepted:" part of the errors about it.
	Meaning, Default, Accepted string
	// ConfigField is the vxlan.Config field the option sets, if any, so
	// that a refusal of that field by vxlan.Config.Validate is reported as
	// a refusal of this option.
	ConfigField string

	apply func(p *parsedOptions, v string) error
	// whyKinds, when set, says why the kinds not in Kinds do not take the
	// option; the refusal of such a network gives it.
	whyKinds string
}

// parsedOptions is the spec being built from options, with what the
// checks between options need to know.
type parsedOptions struct {
	spec              *NetworkSpec
	portLow, portHigh *uint16
	age               *time.Duration
	noAge             bool
	typed             map[string]string // canonical name -> key as typed
}

// The kinds of network each option applies to.
var (
	vxlanKinds      = []NetworkKind{KindBridge, KindMacvlan}
	bridgeKinds     = []NetworkKind{KindBridge}
	parentKinds     = []NetworkKind{KindParent}
	macvlanLinkKind = []NetworkKind{KindMacvlan, KindParent}
)

const (
	acceptedBool   = "true or false"
	acceptedIfName = "an interface name: 1 to 15 bytes of printable ASCII, no '/', ':', '%' or spaces"
	acceptedMAC    = "a unicast MAC address"
	acceptedU32    = "0..4294967295"
)

// macvlanModes are the macvlan modes a network may ask for, in the order
// the documentation lists them.
var macvlanModes = []rtlink.MacvlanMode{rtlink.MacvlanModeBridge, rtlink.MacvlanModePrivate, rtlink.MacvlanModeVEPA, rtlink.MacvlanModePassthru}

var optionTable = []Option{
	{Name: "VxlanId", Kinds: vxlanKinds, ConfigField: "VNI",
		Meaning:  "VXLAN Network Identifier (VNI) of the network",
		Default:  "none: required, except on swarm networks (global scope), which get one from the manager's range (1000-3999 unless set)",
		Accepted: "0..16777215, decimal or 0x-hex",
		apply:    uintValue(24, func(s *NetworkSpec, n uint64) { s.VXLAN.VNI = uint32(n) })},
	{Name: "mode", Kinds: vxlanKinds,
		Meaning: "how containers attach to the vxlan: a veth into a bridge, or a macvlan link on the vxlan link itself (no " +
			"bridge; the gateway is never put on the host)",
		Default:  "bridge",
		Accepted: "bridge or macvlan",
		apply: func(p *parsedOptions, v string) error {
			switch k := NetworkKind(strings.ToLower(v)); k {
			case KindBridge, KindMacvlan:
				p.spec.Kind = k
				return nil
			}
			return fmt.Errorf("unknown mode")
		}},
	{Name: "VtepDev", Kinds: vxlanKinds, ConfigField: "Device",
		Meaning:  "underlay device of the tunnel endpoint (VTEP); a list is tried in order and the first that exists on the host wins",
		Default:  "the plugin's default VTEP device",
		Accepted: "interface names, comma-separated",
		apply:    nameListValue(func(s *NetworkSpec, names []string) { s.VTEPCandidates = names })},
	{Name: "SrcAddr", Kinds: vxlanKinds, ConfigField: "Local",
		Meaning: "source address of outgoing VXLAN packets", Default: "chosen by the kernel's routing", Accepted: "an IPv4 or IPv6 unicast address",
		apply: func(p *parsedOptions, v string) error {
			a, err := parseAddr(v)
			p.spec.VXLAN.Local = a
			return err
		}},
	{Name: "Group", Kinds: vxlanKinds, ConfigField: "Group",
		Meaning: "multicast group to join, or one unicast remote VTEP", Default: "none", Accepted: "an IPv4 or IPv6 address; a multicast group needs VtepDev",
		apply: func(p *parsedOptions, v string) error {
			a, err := parseAddr(v)
			p.spec.VXLAN.Group = a
			return err
		}},
	{Name: "Peers", Kinds: vxlanKinds,
		Meaning:  "remote VTEPs to flood to by unicast (head-end replication), so the underlay needs no multicast",
		Default:  "none",
		Accepted: "comma-separated IPv4 or IPv6 unicast addresses",
		apply: func(p *parsedOptions, v string) error {
			peers, err := parsePeers(v)
			p.spec.Peers = peers
			return err
		}},
	{Name: "VtepFilter", Kinds: vxlanKinds,
		Meaning: "admit the network's VXLAN packets (its Port and VNI) only from its VTEPs, dropping and counting the others: " +
			"the Peers, the swarm's nodes, an EVPN network's remote VTEPs, a unicast Group, a multicast Group's VTEP device " +
			"prefixes, and VtepAllow (see docs/vtep-filter.md); false for operators who filter elsewhere",
		Default:  "the plugin's -vtep-filter flag (VTEP_FILTER), true unless set",
		Accepted: acceptedBool,
		apply:    boolValue(func(s *NetworkSpec, b bool) { s.VTEPFilter = vxlan.Ptr(b) })},
	{Name: "VtepAllow", Kinds: vxlanKinds,
		Meaning: "sources the VTEP filter admits besides the network's VTEPs; on a multicast Group network, instead of the " +
			"prefixes of the VTEP device's addresses",
		Default:  "none",
		Accepted: "comma-separated IPv4 or IPv6 addresses or prefixes (198.18.0.0/15, fd00::1)",
		apply: func(p *parsedOptions, v string) error {
			allow, err := parsePrefixes(v)
			p.spec.VTEPAllow = allow
			return err
		}},
	{Name: "ControlPlane", Kinds: bridgeKinds, whyKinds: evpnNeedsBridge,
		Meaning: "how VTEPs and remote MACs are found: flood and learn (Group or Peers), or BGP EVPN through a routing daemon " +
			"on each host such as FRR (see docs/evpn.md: learning off, the local address from SrcAddr or VtepDev, no Peers " +
			"or Group)",
		Default:  "none",
		Accepted: controlPlaneAccepted,
		apply:    controlPlaneValue},
	{Name: "Port", Kinds: vxlanKinds, ConfigField: "Port",
		Meaning: "UDP destination port", Default: "4789 (IANA)", Accepted: "1..65535",
		apply: rangeValue(1, 65535, func(s *NetworkSpec, n uint64) { s.VXLAN.Port = uint16(n) })},
	{Name: "PortLow", Kinds: vxlanKinds, ConfigField: "SrcPorts",
		Meaning: "lowest UDP source port", Default: "kernel's choice", Accepted: "1..65535, with PortHigh, not above it",
		apply: func(p *parsedOptions, v string) error {
			n, err := parseRange(v, 1, 65535)
			p.portLow = vxlan.Ptr(uint16(n))
			return err
		}},
	{Name: "PortHigh", Kinds: vxlanKinds,
		Meaning: "highest UDP source port", Default: "kernel's choice", Accepted: "1..65535, with PortLow, not below it",
		apply: func(p *parsedOptions, v string) error {
			n, err := parseRange(v, 1, 65535)
			p.portHigh = vxlan.Ptr(uint16(n))
			return err
		}},
	{Name: "TTL", Kinds: vxlanKinds, ConfigField: "TTL",
		Meaning: "TTL of outgoing VXLAN packets", Default: "0: the route's", Accepted: "0..255",
		apply: rangeValue(0, 255, func(s *NetworkSpec, n uint64) { s.VXLAN.TTL = uint8(n) })},
	{Name: "TOS", Kinds: vxlanKinds, ConfigField: "TOS",
		Meaning: "TOS of outgoing VXLAN packets", Default: "0", Accepted: "0..255 or inherit",
		apply: func(p *parsedOptions, v string) error {
			if strings.EqualFold(v, "inherit") {
				p.spec.VXLAN.TOS = 1 // the kernel's value for "inherit"
				return nil
			}
			n, err := parseRange(v, 0, 255)
			p.spec.VXLAN.TOS = uint8(n)
			return err
		}},
	{Name: "Learning", Kinds: vxlanKinds, ConfigField: "Learning",
		Meaning: "enter unknown source MAC addresses into the FDB", Default: "true", Accepted: acceptedBool,
		apply: boolValue(func(s *NetworkSpec, b bool) { s.VXLAN.Learning = vxlan.Ptr(b) })},
	{Name: "Proxy", Kinds: vxlanKinds, ConfigField: "Proxy",
		Meaning: "answer ARP and ND from the neighbour table (ARP proxy)", Default: "false", Accepted: acceptedBool,
		apply: boolValue(func(s *NetworkSpec, b bool) { s.VXLAN.Proxy = b })},
	{Name: "RSC", Kinds: vxlanKinds, ConfigField: "RSC",
		Meaning: "route short circuit", Default: "false", Accepted: acceptedBool,
		apply: boolValue(func(s *NetworkSpec, b bool) { s.VXLAN.RSC = b })},
	{Name: "L2miss", Kinds: vxlanKinds, ConfigField: "L2Miss",
		Meaning: "netlink notifications for unknown MAC addresses", Default: "false", Accepted: acceptedBool,
		apply: boolValue(func(s *NetworkSpec, b bool) { s.VXLAN.L2Miss = b })},
	{Name: "L3miss", Kinds: vxlanKinds, ConfigField: "L3Miss",
		Meaning: "netlink notifications for unknown IP addresses", Default: "false", Accepted: acceptedBool,
		apply: boolValue(func(s *NetworkSpec, b bool) { s.VXLAN.L3Miss = b })},
	{Name: "GBP", Kinds: vxlanKinds, ConfigField: "GBP",
		Meaning: "VXLAN Group Based Policy extension", Default: "false", Accepted: acceptedBool,
		apply: boolValue(func(s *NetworkSpec, b bool) { s.VXLAN.GBP = b })},
	{Name: "Age", Kinds: vxlanKinds, ConfigField: "Ageing",
		Meaning: "lifetime of learnt FDB entries, in seconds", Default: "300", Accepted: fmt.Sprintf("1..%d", vxlan.MaxAgeing/time.Second),
		apply: func(p *parsedOptions, v string) error {
			n, err := parseRange(v, 1, uint64(vxlan.MaxAgeing/time.Second))
			p.age = vxlan.Ptr(time.Duration(n) * time.Second)
			return err
		}},
	{Name: "NoAge", Kinds: vxlanKinds,
		Meaning: "keep learnt FDB entries as long as the kernel can: 4294967 s, about 49.7 days (the kernel turns an ageing of " +
			"0 into 300 s, so \"never\" does not exist)",
		Default:  "false",
		Accepted: acceptedBool,
		apply: func(p *parsedOptions, v string) error {
			b, err := parseBool(v)
			p.noAge = b
			return err
		}},
	{Name: "Limit", Kinds: vxlanKinds, ConfigField: "Limit",
		Meaning: "maximum number of FDB entries", Default: "0: no limit", Accepted: acceptedU32,
		apply: uintValue(32, func(s *NetworkSpec, n uint64) { s.VXLAN.Limit = uint32(n) })},
	{Name: "vxlanName", Kinds: vxlanKinds, ConfigField: "Name",
		Meaning: "name of the vxlan interface", Default: "vx_ and the first 12 characters of the network ID", Accepted: acceptedIfName,
		apply: nameValue(func(s *NetworkSpec, name string) { s.VXLAN.Name = name })},
	{Name: "vxlanMTU", Kinds: vxlanKinds, ConfigField: "MTU",
		Meaning:  "MTU of the vxlan interface; also the containers' MTU unless bridgeMTU is set",
		Default:  "the VTEP device's MTU minus 50 (IPv4 underlay) or 70 (IPv6)",
		Accepted: fmt.Sprintf("%d..%d", vxlan.MinMTU, vxlan.MaxMTU),
		apply:    rangeValue(vxlan.MinMTU, vxlan.MaxMTU, func(s *NetworkSpec, n uint64) { s.VXLAN.MTU = int(n) })},
	{Name: "vxlanHardwareAddr", Kinds: vxlanKinds, ConfigField: "HardwareAddr",
		Meaning: "MAC address of the vxlan interface", Default: "random", Accepted: acceptedMAC,
		apply: macValue(func(s *NetworkSpec, m []byte) { s.VXLAN.HardwareAddr = m })},
	{Name: "vxlanTxQLen", Kinds: vxlanKinds, ConfigField: "TxQueueLen",
		Meaning: "transmit queue length of the vxlan interface", Default: "kernel default", Accepted: acceptedU32,
		apply: uintValue(32, func(s *NetworkSpec, n uint64) { s.VXLAN.TxQueueLen = int(n) })},
	{Name: "bridgeName", Kinds: bridgeKinds,
		Meaning:  "name of the bridge; an existing bridge of that name is used and left in place",
		Default:  "br_ and the first 12 characters of the network ID",
		Accepted: acceptedIfName,
		apply:    nameValue(func(s *NetworkSpec, name string) { s.Bridge.Name = name })},
	{Name: "bridgeMTU", Kinds: bridgeKinds,
		Meaning: "MTU of the bridge and of the containers' interfaces", Default: "the containers' MTU", Accepted: fmt.Sprintf("%d..%d", vxlan.MinMTU, vxlan.MaxMTU),
		apply: rangeValue(vxlan.MinMTU, vxlan.MaxMTU, func(s *NetworkSpec, n uint64) { s.Bridge.MTU = int(n) })},
	{Name: "bridgeHardwareAddr", Kinds: bridgeKinds,
		Meaning: "MAC address of the bridge", Default: "random", Accepted: acceptedMAC,
		apply: macValue(func(s *NetworkSpec, m []byte) { s.Bridge.HardwareAddr = m })},
	{Name: "bridgeTXQLen", Kinds: bridgeKinds,
		Meaning: "transmit queue length of the bridge", Default: "kernel default", Accepted: acceptedU32,
		apply: uintValue(32, func(s *NetworkSpec, n uint64) { s.Bridge.TxQueueLen = int(n) })},
	{Name: "HostGateway", Kinds: bridgeKinds,
		Meaning:  "put the network's gateway addresses on the bridge, so the host reaches its containers (bridge mode only)",
		Default:  "true in local scope, false in global scope",
		Accepted: acceptedBool,
		apply:    boolValue(func(s *NetworkSpec, b bool) { s.hostGatewayOption = vxlan.Ptr(b) })},
	{Name: "parent", Kinds: parentKinds,
		Meaning: "a macvlan network on a host interface instead of a vxlan (give no VxlanId): the first name that exists on " +
			"this host wins; name.id is an 802.1Q sub-interface, made when missing if its master exists",
		Default:  "none: an isolated network on this host (local scope only)",
		Accepted: "interface names, comma-separated, spaces allowed",
		apply:    nameListValue(func(s *NetworkSpec, names []string) { s.Parent.Candidates = names })},
	{Name: "parent-file", Kinds: parentKinds,
		Meaning: "a TOML file in the plugin's parent directory whose [macvlan] table names the parent: parent = \"eth1\" or a " +
			"list (or a file whose first line is the name); read on each host, so hosts may differ",
		Default:  "none",
		Accepted: parentFileRules,
		apply: func(p *parsedOptions, v string) error {
			p.spec.Parent.File = v
			return checkParentFileName(v)
		}},
	{Name: "macvlan_mode", Kinds: macvlanLinkKind,
		Meaning: "macvlan mode of the containers' links (macvlan mode and parent networks)", Default: "bridge", Accepted: macvlanModesText(),
		apply: func(p *parsedOptions, v string) error {
			m, err := rtlink.ParseMacvlanMode(strings.ToLower(v))
			if err != nil || !slices.Contains(macvlanModes, m) {
				return fmt.Errorf("unknown macvlan mode")
			}
			p.spec.MacvlanMode = m
			return nil
		}},
}

// Options returns the table of network options, in the order docs/options.md
// lists them. The slice is a copy: changing it changes nothing.
func Options() []Option {
	out := slices.Clone(optionTable)
	for i := range out {
		out[i].Kinds = slices.Clone(out[i].Kinds)
	}
	return out
}

func macvlanModesText() string {
	names := make([]string, len(macvlanModes))
	for i, m := range macvlanModes {
		names[i] = m.String()
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// The value readers of the table: each parses the value and sets a field.

func uintValue(bits int, set func(*NetworkSpec, uint64)) func(*parsedOptions, string) error {
	return func(p *parsedOptions, v string) error {
		n, err := parseUint(v, bits)
		set(p.spec, n)
		return err
	}
}

func rangeValue(lo, hi uint64, set func(*NetworkSpec, uint64)) func(*parsedOptions, string) error {
	return func(p *parsedOptions, v string) error {
		n, err := parseRange(v, lo, hi)
		set(p.spec, n)
		return err
	}
}

func boolValue(set func(*NetworkSpec, bool)) func(*parsedOptions, string) error {
	return func(p *parsedOptions, v string) error {
		b, err := parseBool(v)
		set(p.spec, b)
		return err
	}
}

func nameValue(set func(*NetworkSpec, string)) func(*parsedOptions, string) error {
	return func(p *parsedOptions, v string) error {
		set(p.spec, v)
		return checkIfName(v)
	}
}

func nameListValue(set func(*NetworkSpec, []string)) func(*parsedOptions, string) error {
	return func(p *parsedOptions, v string) error {
		names, err := ParseNameList(v)
		set(p.spec, names)
		return err
	}
}

func macValue(set func(*NetworkSpec, []byte)) func(*parsedOptions, string) error {
	return func(p *parsedOptions, v string) error {
		m, err := parseMAC(v)
		set(p.spec, m)
		return err
	}
}

// kindNames describes kinds for the documentation and for errors.
var kindNames = map[NetworkKind]string{KindBridge: "vxlan, bridge mode", KindMacvlan: "vxlan, mode=macvlan", KindParent: "parent (no VxlanId)"}

// KindsText describes kinds of network as the documentation and the errors do.
func KindsText(kinds []NetworkKind) string {
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = kindNames[k]
	}
	return strings.Join(parts, "; ")
}

// OptionError reports a bad network option; its text is what the user of
// `docker network create` reads. Err, when set, is the cause (a missing
// interface, a kernel refusal), for errors.Is and errors.As.
type OptionError struct {
	Option   string // the option as the user typed it
	Value    string
	Problem  string
	Accepted string
	Err      error
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

// Unwrap returns the cause.
func (e *OptionError) Unwrap() error { return e.Err }

// quoteOddName quotes an option name that is empty or holds characters
// other than letters, digits, '-', '_' and '.', so the error reads clearly.
func quoteOddName(name string) string {
	if name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == "" {
		return name
	}
	return strconv.Quote(name)
}

// optionIndex finds a table option by its name in lower case.
var optionIndex = func() map[string]*Option {
	m := make(map[string]*Option, len(optionTable))
	for i := range optionTable {
		m[strings.ToLower(optionTable[i].Name)] = &optionTable[i]
	}
	return m
}()

// lookupOption returns the option a key names, matched without regard to
// case, or nil: the one lookup of an option by name.
func lookupOption(key string) *Option { return optionIndex[strings.ToLower(key)] }

// LookupOption returns the option a key names, matched as ParseOptions
// matches keys: without regard to case.
func LookupOption(key string) (Option, bool) {
	o := lookupOption(key)
	if o == nil {
		return Option{}, false
	}
	c := *o
	c.Kinds = slices.Clone(o.Kinds)
	return c, true
}

// GivenKey returns the key of opts that names the option of the canonical
// name, as the user typed it, and whether there is one.
func GivenKey(opts map[string]string, canonical string) (string, bool) {
	for k := range opts {
		if o := lookupOption(k); o != nil && o.Name == canonical {
			return k, true
		}
	}
	return "", false
}

// optionForField returns the option that sets a vxlan.Config field.
func optionForField(field string) *Option {
	for i := range optionTable {
		if optionTable[i].ConfigField == field {
			return &optionTable[i]
		}
	}
	return nil
}

func optionNames() string {
	names := make([]string, len(optionTable))
	for i, o := range optionTable {
		names[i] = o.Name
	}
	return strings.Join(names, " ")
}

// ParseOptions turns a network's options (keys in any case) into a
// NetworkSpec. Every value is checked, then the options against each
// other; the first problem is returned as an *OptionError naming the option.
func ParseOptions(opts map[string]string) (*NetworkSpec, error) {
	p := &parsedOptions{spec: &NetworkSpec{}, typed: map[string]string{}}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report problems in a stable order
	for _, k := range keys {
		if err := p.apply(k, strings.TrimSpace(opts[k])); err != nil {
			return nil, err
		}
	}
	if err := p.decideKind(keys, opts); err != nil {
		return nil, err
	}
	if err := p.checkCombinations(opts); err != nil {
		return nil, err
	}
	return p.spec, nil
}

// apply reads one option.
func (p *parsedOptions) apply(k, v string) error {
	if strings.TrimSpace(k) == "" {
		return &OptionError{Option: k, Value: v, Problem: "an option needs a name (-o NAME=VALUE)", Accepted: optionNames()}
	}
	o := lookupOption(k)
	if o == nil {
		return &OptionError{Option: k, Problem: "unknown option", Accepted: optionNames()}
	}
	if prev, dup := p.typed[o.Name]; dup {
		return &OptionError{Option: k, Value: v, Problem: "given twice (also as " + prev + ")"}
	}
	p.typed[o.Name] = k
	if err := o.apply(p, v); err != nil {
		return &OptionError{Option: k, Value: v, Problem: err.Error(), Accepted: o.Accepted}
	}
	return nil
}

// given returns the key as the user typed it of a canonical option name.
func (p *parsedOptions) given(canonical string) string {
	if k, ok := p.typed[canonical]; ok {
		return k
	}
	return canonical
}

// decideKind sets the network's kind: a VxlanId makes a vxlan network
// (bridge mode unless mode says macvlan); without one, any vxlan option is a
// forgotten VxlanId, and otherwise it is a macvlan network on a parent
// interface. Then every option given must be one that kind takes.
func (p *parsedOptions) decideKind(keys []string, opts map[string]string) error {
	s := p.spec
	if _, ok := p.typed["VxlanId"]; ok {
		if s.Kind == "" {
			s.Kind = KindBridge
		}
	} else {
		_, parent := p.typed["parent"]
		_, parentFile := p.typed["parent-file"]
		for _, k := range keys {
			if !parent && !parentFile && !slices.Contains(lookupOption(k).Kinds, KindParent) {
				return &OptionError{Option: "VxlanId", Problem: fmt.Sprintf("missing: option %s is for vxlan networks, which need their VNI", k),
					Accepted: lookupOption("VxlanId").Accepted}
			}
		}
		s.Kind = KindParent
	}
	for _, k := range keys {
		if o := lookupOption(k); !slices.Contains(o.Kinds, s.Kind) {
			problem := "not for a network of kind " + kindNames[s.Kind]
			if o.whyKinds != "" {
				problem += ": " + o.whyKinds
			}
			return &OptionError{Option: k, Value: opts[k], Problem: problem, Accepted: "networks of kind " + KindsText(o.Kinds)}
		}
	}
	if s.Kind != KindBridge && s.MacvlanMode == 0 {
		s.MacvlanMode = rtlink.MacvlanModeBridge
	}
	return nil
}

// checkCombinations checks the options against each other and sets the
// fields that depend on several of them.
func (p *parsedOptions) checkCombinations(opts map[string]string) error {
	s := p.spec
	if err := p.checkControlPlane(opts); err != nil {
		return err
	}
	if s.Kind == KindParent && len(s.Parent.Candidates) > 0 && s.Parent.File != "" {
		return &OptionError{Option: p.given("parent-file"), Value: s.Parent.File, Problem: "given with parent: give one of them"}
	}
	switch {
	case p.noAge && p.age != nil:
		return &OptionError{Option: p.given("Age"), Value: opts[p.given("Age")], Problem: "contradicts NoAge=true: give one of them"}
	case p.noAge:
		s.VXLAN.Ageing = vxlan.Ptr(vxlan.MaxAgeing)
	case p.age != nil:
		s.VXLAN.Ageing = p.age
	}
	switch {
	case (p.portLow == nil) != (p.portHigh == nil):
		missing := "PortHigh"
		if p.portLow == nil {
			missing = "PortLow"
		}
		return &OptionError{Option: missing, Problem: "missing: PortLow and PortHigh go together", Accepted: "both, 1..65535, PortLow <= PortHigh"}
	case p.portLow != nil && *p.portLow > *p.portHigh:
		return &OptionError{
			Option:   p.given("PortLow"),
			Value:    fmt.Sprint(*p.portLow),
			Problem:  fmt.Sprintf("above PortHigh=%d", *p.portHigh),
			Accepted: "PortLow <= PortHigh",
		}
	case p.portLow != nil:
		s.VXLAN.SrcPorts = vxlan.PortRange{Low: *p.portLow, High: *p.portHigh}
	}
	if s.VTEPFilter != nil && !*s.VTEPFilter && len(s.VTEPAllow) > 0 {
		return &OptionError{Option: p.given("VtepAllow"), Value: opts[p.given("VtepAllow")], Problem: "given with VtepFilter=false, which admits every source",
			Accepted: "VtepAllow with the filter on"}
	}
	// The vxlan link's own rules (address families, a unicast source, a
	// device for a multicast group) are vxlan.Config.Validate's, applied
	// once the spec is whole (see optionErrorOf). Peers are the plugin's.
	for _, peer := range s.Peers {
		if peer.Is6() != s.UnderlayIPv6() {
			return &OptionError{
				Option:   p.given("Peers"),
				Value:    opts[p.given("Peers")],
				Problem:  "mixes IPv4 and IPv6 (or differs from Group/SrcAddr): a vxlan link has one underlay family",
				Accepted: "addresses of one family",
			}
		}
	}
	return nil
}
