package vxlan

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// DefaultPort is the UDP destination port used when Config.Port is 0: the
// IANA-assigned VXLAN port. (The kernel's own default is 8472.)
const DefaultPort = 4789

// EffectivePort returns the UDP destination port a Config with Port port
// uses: port itself, or DefaultPort for 0. It is the one place this rule is
// written; compare ports of configs through it.
func EffectivePort(port uint16) uint16 {
	if port == 0 {
		return DefaultPort
	}
	return port
}

// Bytes the VXLAN encapsulation adds in front of the inner Ethernet frame:
// outer IP header, UDP header, VXLAN header and the inner Ethernet header.
// A vxlan link's MTU can be at most its underlay device's MTU minus these.
const (
	OverheadIPv4 = 20 + 8 + 8 + 14 // 50
	OverheadIPv6 = 40 + 8 + 8 + 14 // 70
)

// Limits of the VXLAN header and of Linux.
const (
	MaxVNI      = 1<<24 - 1 // VNIs are 24 bits.
	MaxLabel    = 1<<20 - 1 // IPv6 flow labels are 20 bits.
	MaxNameLen  = 15        // IFNAMSIZ - 1.
	maxAliasLen = 255       // IFALIASZ - 1.
	MinMTU      = 68        // the smallest MTU of an interface carrying IPv4
	MaxMTU      = 65535     // the largest MTU of an interface
	// MaxAgeing is the longest FDB ageing this package recommends: about
	// 49.7 days, the largest whose age_interval*HZ fits 32 bits for HZ up
	// to 1000. Validate accepts longer ones up to 4294967295s, the largest
	// the kernel stores, so that every link Get returns validates.
	MaxAgeing = 4294967 * time.Second
	// maxKernelAgeing is the largest IFLA_VXLAN_AGEING, a u32 of seconds.
	maxKernelAgeing = math.MaxUint32 * time.Second
)

// DF says how the outer IPv4 header's Don't Fragment bit is set.
type DF uint8

// DF values, with the kernel's numbers.
const (
	DFUnset   DF = 0 // kernel default: DF not set
	DFSet     DF = 1 // always set DF
	DFInherit DF = 2 // copy DF from the inner IPv4 header
)

// String returns "unset", "set" or "inherit", as iproute2 spells them.
func (d DF) String() string {
	switch d {
	case DFUnset:
		return "unset"
	case DFSet:
		return "set"
	case DFInherit:
		return "inherit"
	}
	return fmt.Sprintf("DF(%d)", uint8(d))
}

// PortRange is an inclusive range of UDP source ports; the zero range is
// unset. It is package rtlink's type: one range type for both packages.
type PortRange = rtlink.PortRange

// HeaderBits are the VXLAN header bits to tolerate as reserved
// (IFLA_VXLAN_RESERVED_BITS): the first and second 32-bit words of the
// header, in host order.
type HeaderBits struct {
	// Flags is the first word: the flags byte and 24 reserved bits.
	Flags uint32 `json:"flags"`
	// VNI is the second word: the VNI and the last reserved byte.
	VNI uint32 `json:"vni"`
}

// Config describes a VXLAN link. Name and VNI are required; see the package
// documentation for how zero values are treated.
type Config struct {
	// Name is the interface name, 1 to 15 bytes, without '/', ':' or spaces.
	Name string `json:"name"`
	// VNI is the VXLAN Network Identifier, 0 to 16777215.
	VNI uint32 `json:"vni"`

	// Group is the multicast group to join (iproute2's "group"), or the single
	// unicast remote VTEP (iproute2's "remote"). A multicast group requires
	// Device. For several unicast remotes leave it unset and use AddPeer.
	Group netip.Addr `json:"group,omitzero"`
	// Local is the source address of outgoing packets. Group and Local must
	// be of one family; that family is the underlay's.
	Local netip.Addr `json:"local,omitzero"`
	// Device is the underlay interface (IFLA_VXLAN_LINK), by name in this
	// namespace. Get leaves it empty when the underlay is in another
	// namespace (LinkNetNSID set); DeviceIndex then says which device.
	Device string `json:"device,omitempty"`
	// DeviceIndex is the underlay interface's index: filled in by Get and
	// List, and on create used when Device is empty (an index in the
	// namespace LinkNetNSID names, or in this one). 0 means none.
	DeviceIndex int `json:"device_index,omitempty"`
	// LinkNetNSID, when set, is the id (as this namespace numbers it, see
	// `ip netns list-id`) of the namespace the underlay device and the UDP
	// socket are in (IFLA_LINK_NETNSID): a vxlan made there and moved here,
	// or made here with this field. nil means this namespace. With it set,
	// Device must be empty and DeviceIndex names the device over there.
	LinkNetNSID *int32 `json:"link_netnsid,omitempty"`

	// Port is the UDP destination port; 0 means DefaultPort (4789).
	Port uint16 `json:"port,omitempty"`
	// SrcPorts is the UDP source port range; zero keeps the kernel default.
	SrcPorts PortRange `json:"src_ports,omitzero"`

	// TTL of outgoing packets; 0 lets the route decide (kernel default).
	TTL uint8 `json:"ttl,omitempty"`
	// TTLInherit copies the TTL from the inner packet. The kernel keeps a
	// TTL given with it but does not use it.
	TTLInherit bool `json:"ttl_inherit,omitempty"`
	// TOS of outgoing packets; 1 inherits it from the inner packet.
	TOS uint8 `json:"tos,omitempty"`
	// DF sets the outer Don't Fragment bit (IPv4 underlay).
	DF DF `json:"df,omitzero"`
	// Label is the IPv6 flow label of outgoing packets (IPv6 underlay only),
	// 0 to 1048575.
	Label uint32 `json:"label,omitempty"`
	// LabelInherit copies the flow label from the inner IPv6 packet
	// (IFLA_VXLAN_LABEL_POLICY); IPv6 underlay only.
	LabelInherit bool `json:"label_inherit,omitempty"`

	// Learning enters unknown source MAC addresses into the FDB; nil keeps
	// the kernel default (on).
	Learning *bool `json:"learning,omitempty"`
	// Ageing is the lifetime of learnt FDB entries, in whole seconds from 1s
	// to 4294967295s (MaxAgeing is the longest recommended); nil keeps the
	// kernel default (300s). The kernel has no "never expire" for vxlan: it
	// turns 0 into 300s, so 0 is refused. Entries added by hand (peers,
	// static MACs) never age.
	Ageing *time.Duration `json:"-"`
	// Limit is the maximum number of FDB entries; 0 means no limit.
	Limit uint32 `json:"limit,omitempty"`

	// Proxy answers ARP and ND requests from the neighbour table (ARP proxy).
	Proxy bool `json:"proxy,omitempty"`
	// RSC is route short circuit: frames for a known IP neighbour are sent
	// straight to its VTEP.
	RSC bool `json:"rsc,omitempty"`
	// L2Miss sends netlink notifications for unknown MAC addresses.
	L2Miss bool `json:"l2miss,omitempty"`
	// L3Miss sends netlink notifications for unknown IP addresses.
	L3Miss bool `json:"l3miss,omitempty"`

	// CollectMetadata makes the device a flow-based (external) one, used by
	// tc and BPF; VNI and remotes then come per packet.
	CollectMetadata bool `json:"collect_metadata,omitempty"`
	// VNIFilter enables per-VNI filtering; requires CollectMetadata.
	VNIFilter bool `json:"vnifilter,omitempty"`

	// UDPChecksum computes UDP checksums on an IPv4 underlay; nil keeps the
	// kernel default.
	UDPChecksum *bool `json:"udp_checksum,omitempty"`
	// UDPZeroChecksum6TX sends zero UDP checksums on an IPv6 underlay.
	UDPZeroChecksum6TX bool `json:"udp_zero_checksum6_tx,omitempty"`
	// UDPZeroChecksum6RX accepts zero UDP checksums on an IPv6 underlay.
	UDPZeroChecksum6RX bool `json:"udp_zero_checksum6_rx,omitempty"`
	// RemoteChecksumTX sends remote checksum offload (RCO) headers.
	RemoteChecksumTX bool `json:"remote_checksum_tx,omitempty"`
	// RemoteChecksumRX accepts remote checksum offload headers.
	RemoteChecksumRX bool `json:"remote_checksum_rx,omitempty"`
	// RemoteChecksumNoPartial handles received RCO without partial
	// checksum offload.
	RemoteChecksumNoPartial bool `json:"remote_checksum_nopartial,omitempty"`

	// GBP enables the Group Based Policy extension.
	GBP bool `json:"gbp,omitempty"`
	// GPE enables the Generic Protocol Extension (a layer-3 device). The
	// kernel takes it only with CollectMetadata, with Learning set to
	// false, and without Proxy, RSC, L2Miss, L3Miss, GBP,
	// TTLInherit or remote checksum offload; Validate checks this
	// (LocalBypass and MulticastRoute it takes).
	GPE bool `json:"gpe,omitempty"`
	// LocalBypass delivers traffic to local VTEPs directly; nil keeps the
	// kernel default (on).
	LocalBypass *bool `json:"local_bypass,omitempty"`
	// MulticastRoute routes multicast traffic (IFLA_VXLAN_MC_ROUTE, Linux
	// 6.15 and later). Write-only: the kernel accepts it but does not report
	// it back (seen on 6.18), so Get returns false and Ensure cannot compare it.
	MulticastRoute bool `json:"multicast_route,omitempty"`
	// ReservedBits sets which header bits are tolerated as reserved (Linux
	// 6.14 and later); nil keeps the kernel's choice.
	ReservedBits *HeaderBits `json:"reserved_bits,omitempty"`

	// MTU of the link; 0 lets the kernel derive it from Device. With a
	// Device it can be at most the device's MTU minus OverheadIPv4 (or
	// OverheadIPv6 for an IPv6 underlay); Create refuses more, which the
	// kernel would silently lower.
	MTU int `json:"mtu,omitempty"`
	// HardwareAddr is the link's MAC address; nil lets the kernel pick one.
	HardwareAddr net.HardwareAddr `json:"-"`
	// TxQueueLen is the transmit queue length; 0 keeps the kernel default.
	TxQueueLen int `json:"txqueuelen,omitempty"`
	// Alias is the interface alias (IFLA_IFALIAS), at most 255 bytes.
	Alias string `json:"alias,omitempty"`
	// Up brings the link up once it is created.
	Up bool `json:"up,omitempty"`

	// Index is the link's interface index: filled in by Get and List,
	// ignored by Create, Ensure and Update.
	Index int `json:"index,omitempty"`
}

// Ptr returns a pointer to v, for the optional fields of Config:
// Learning: vxlan.Ptr(false). It is rtlink.Ptr, under this package's name.
func Ptr[T any](v T) *T { return rtlink.Ptr(v) }

// ConfigError reports a Config field whose value is not accepted. It
// matches ErrInvalid.
type ConfigError struct {
	// Field is the Config field, e.g. "VNI".
	Field string
	// Value is the value given.
	Value any
	// Accepted says what would be accepted, e.g. "0..16777215".
	Accepted string
	// Problem, when set, says in words what is wrong with the value, for
	// a rule that ties it to another field ("not of the family of
	// Group=198.18.0.9").
	Problem string
}

// Error returns "vxlan: invalid FIELD VALUE: accepted ACCEPTED", with the
// problem after the value when there is one.
func (e *ConfigError) Error() string {
	if e.Problem != "" {
		return fmt.Sprintf("vxlan: invalid %s %v: %s; accepted %s", e.Field, e.Value, e.Problem, e.Accepted)
	}
	return fmt.Sprintf("vxlan: invalid %s %v: accepted %s", e.Field, e.Value, e.Accepted)
}

// Is makes a ConfigError match ErrInvalid.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalid }

// ValidateName checks that name is a Linux interface name: 1 to 15 bytes,
// not "." or "..", without '/', ':' or white space.
func ValidateName(name string) error {
	switch {
	case name == "", len(name) > MaxNameLen, name == ".", name == "..",
		strings.ContainsAny(name, "/: \t\n\v\f\r\x00"):
		return fmt.Errorf("invalid interface name %q: accepted 1 to %d bytes, not \".\" or \"..\", without '/', ':' or white space", name, MaxNameLen)
	}
	return nil
}

// Validate checks every field against what the kernel accepts and returns
// the first problem as a *ConfigError naming the field. It does not modify
// the Config and sends nothing.
func (c *Config) Validate() error {
	bad := func(field string, v any, accepted string) error {
		return &ConfigError{Field: field, Value: v, Accepted: accepted}
	}
	if err := ValidateName(c.Name); err != nil {
		return bad("Name", fmt.Sprintf("%q", c.Name), fmt.Sprintf("1 to %d bytes, not \".\" or \"..\", without '/', ':' or white space", MaxNameLen))
	}
	if c.VNI > MaxVNI {
		return bad("VNI", c.VNI, "0..16777215")
	}
	if c.Device != "" && ValidateName(c.Device) != nil {
		return bad("Device", fmt.Sprintf("%q", c.Device), "an interface name of 1 to 15 bytes")
	}
	if c.Group.IsValid() {
		if c.Group.IsUnspecified() {
			return bad("Group", c.Group, "a multicast group or unicast address, IPv4 or IPv6")
		}
		if isMulticast(c.Group) && c.Device == "" && c.DeviceIndex == 0 {
			return &ConfigError{
				Field:    "Group",
				Value:    c.Group,
				Problem:  "a multicast group needs a VTEP device",
				Accepted: "a Device (the underlay interface) set, or a unicast Group",
			}
		}
	}
	if c.Local.IsValid() {
		if isMulticast(c.Local) || c.Local.IsUnspecified() {
			return &ConfigError{Field: "Local", Value: c.Local, Problem: "not a unicast address", Accepted: "a unicast IPv4 or IPv6 address"}
		}
		if c.Group.IsValid() && c.Group.Is4() != c.Local.Is4() {
			return &ConfigError{
				Field:    "Local",
				Value:    c.Local,
				Problem:  fmt.Sprintf("not of the family of Group=%s", c.Group),
				Accepted: "an address of the same family as Group",
			}
		}
	}
	if c.DeviceIndex < 0 || c.DeviceIndex > math.MaxInt32 {
		return bad("DeviceIndex", c.DeviceIndex, "0 (none) or an interface index")
	}
	if c.LinkNetNSID != nil {
		if *c.LinkNetNSID < 0 {
			return bad("LinkNetNSID", *c.LinkNetNSID, "nil or a namespace id of 0 or more")
		}
		if c.Device != "" {
			return bad("Device", fmt.Sprintf("%q", c.Device), `"" when LinkNetNSID is set: name the underlay by DeviceIndex`)
		}
	}
	ipv6 := c.ipv6()
	if c.SrcPorts.Low > c.SrcPorts.High {
		return bad("SrcPorts", c.SrcPorts, "Low <= High")
	}
	if c.DF > DFInherit {
		return bad("DF", uint8(c.DF), "DFUnset, DFSet or DFInherit (0..2)")
	}
	if c.Label > MaxLabel {
		return bad("Label", c.Label, "0..1048575")
	}
	if (c.Label != 0 || c.LabelInherit) && !ipv6 {
		return bad("Label", c.Label, "0 and no LabelInherit unless Group or Local is IPv6")
	}
	if c.Ageing != nil {
		d := *c.Ageing
		if d <= 0 || d%time.Second != 0 || d > maxKernelAgeing {
			return bad("Ageing", d, "whole seconds from 1s to 4294967295s; the kernel turns 0 into 300s")
		}
	}
	if c.VNIFilter && !c.CollectMetadata {
		return bad("VNIFilter", true, "false unless CollectMetadata is set")
	}
	if err := c.validateGPE(); err != nil {
		return err
	}
	if c.MTU != 0 && (c.MTU < MinMTU || c.MTU > MaxMTU) {
		return bad("MTU", c.MTU, fmt.Sprintf("0 (derive) or %d..%d", MinMTU, MaxMTU))
	}
	if len(c.HardwareAddr) > 0 && !ValidMAC(c.HardwareAddr) {
		return bad("HardwareAddr", c.HardwareAddr, "a 6-byte unicast MAC address other than 00:00:00:00:00:00")
	}
	if c.TxQueueLen < 0 || c.TxQueueLen > math.MaxUint32 {
		return bad("TxQueueLen", c.TxQueueLen, "0..4294967295")
	}
	if len(c.Alias) > maxAliasLen {
		return bad("Alias", fmt.Sprintf("%d bytes", len(c.Alias)), "at most 255 bytes")
	}
	return nil
}

// validateGPE checks the settings the kernel refuses together with GPE
// (vxlan_config_validate: only the flags of VXLAN_F_ALLOWED_GPE, and
// COLLECT_METADATA required), each verified on Linux 6.18 by
// TestIntegrationGPECombinations.
func (c *Config) validateGPE() error {
	if !c.GPE {
		return nil
	}
	const why = "when GPE is set (the kernel allows GPE only with these)"
	bad := func(field string, v any, accepted string) error {
		return &ConfigError{Field: field, Value: v, Accepted: accepted + " " + why}
	}
	if !c.CollectMetadata {
		return bad("CollectMetadata", false, "true")
	}
	if c.Learning == nil || *c.Learning {
		return bad("Learning", fmtOptional(c.Learning, "nil (kernel default: on)"), "Ptr(false)")
	}
	for _, f := range []struct {
		name string
		on   bool
	}{
		{"Proxy", c.Proxy}, {"RSC", c.RSC}, {"L2Miss", c.L2Miss}, {"L3Miss", c.L3Miss}, {"GBP", c.GBP},
		{"TTLInherit", c.TTLInherit}, {"RemoteChecksumTX", c.RemoteChecksumTX}, {"RemoteChecksumRX", c.RemoteChecksumRX},
		{"RemoteChecksumNoPartial", c.RemoteChecksumNoPartial},
	} {
		if f.on {
			return bad(f.name, true, "false")
		}
	}
	return nil
}

// fmtOptional formats an optional value, or unset when p is nil.
func fmtOptional[T any](p *T, unset string) string {
	if p == nil {
		return unset
	}
	return fmt.Sprint(*p)
}

// isMulticast reports whether the kernel takes a as a multicast address.
// An IPv4-mapped IPv6 address (::ffff:239.1.1.1) is an IPv6 address to the
// kernel, and not a multicast one, whatever netip says of it.
func isMulticast(a netip.Addr) bool { return a.IsMulticast() && !a.Is4In6() }

// ValidMAC reports whether mac can be an interface's address: 6 bytes,
// unicast, not all zero.
func ValidMAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && mac[0]&1 == 0 && !bytes.Equal(mac, make(net.HardwareAddr, 6))
}

// port returns the UDP destination port the Config asks for.
func (c *Config) port() uint16 { return EffectivePort(c.Port) }

// ipv6 reports whether the Config asks for an IPv6 underlay.
func (c *Config) ipv6() bool { return c.Group.Is6() || c.Local.Is6() }

// overhead returns the bytes the encapsulation adds (see OverheadIPv4): a
// GPE device carries no inner Ethernet header.
func (c *Config) overhead() int {
	o := OverheadIPv4
	if c.ipv6() {
		o = OverheadIPv6
	}
	if c.GPE {
		o -= 14
	}
	return o
}
