package vxlan

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"
)

// jsonConfig is Config as JSON shows it to a person: addresses and MACs
// as text, the source port range as "LOW-HIGH", DF by name, Ageing in
// seconds, and zero values left out.
type jsonConfig struct {
	Name        string     `json:"name"`
	VNI         uint32     `json:"vni"`
	Group       netip.Addr `json:"group,omitzero"`
	Local       netip.Addr `json:"local,omitzero"`
	Device      string     `json:"device,omitempty"`
	DeviceIndex int        `json:"device_index,omitempty"`
	LinkNetNSID *int32     `json:"link_netnsid,omitempty"`

	Port         uint16    `json:"port,omitempty"`
	SrcPorts     PortRange `json:"src_ports,omitzero"`
	TTL          uint8     `json:"ttl,omitempty"`
	TTLInherit   bool      `json:"ttl_inherit,omitempty"`
	TOS          uint8     `json:"tos,omitempty"`
	DF           DF        `json:"df,omitzero"`
	Label        uint32    `json:"label,omitempty"`
	LabelInherit bool      `json:"label_inherit,omitempty"`

	Learning      *bool    `json:"learning,omitempty"`
	AgeingSeconds *float64 `json:"ageing_seconds,omitempty"`
	Limit         uint32   `json:"limit,omitempty"`

	Proxy           bool `json:"proxy,omitempty"`
	RSC             bool `json:"rsc,omitempty"`
	L2Miss          bool `json:"l2miss,omitempty"`
	L3Miss          bool `json:"l3miss,omitempty"`
	CollectMetadata bool `json:"collect_metadata,omitempty"`
	VNIFilter       bool `json:"vnifilter,omitempty"`

	UDPChecksum             *bool `json:"udp_checksum,omitempty"`
	UDPZeroChecksum6TX      bool  `json:"udp_zero_checksum6_tx,omitempty"`
	UDPZeroChecksum6RX      bool  `json:"udp_zero_checksum6_rx,omitempty"`
	RemoteChecksumTX        bool  `json:"remote_checksum_tx,omitempty"`
	RemoteChecksumRX        bool  `json:"remote_checksum_rx,omitempty"`
	RemoteChecksumNoPartial bool  `json:"remote_checksum_nopartial,omitempty"`

	GBP            bool        `json:"gbp,omitempty"`
	GPE            bool        `json:"gpe,omitempty"`
	LocalBypass    *bool       `json:"local_bypass,omitempty"`
	MulticastRoute bool        `json:"multicast_route,omitempty"`
	ReservedBits   *HeaderBits `json:"reserved_bits,omitempty"`

	MTU          int    `json:"mtu,omitempty"`
	HardwareAddr string `json:"hardware_addr,omitempty"`
	TxQueueLen   int    `json:"txqueuelen,omitempty"`
	Alias        string `json:"alias,omitempty"`
	Up           bool   `json:"up,omitempty"`
	Index        int    `json:"index,omitempty"`
}

// MarshalJSON encodes the Config for people: snake_case keys, addresses and
// the MAC as text, SrcPorts as "LOW-HIGH", DF as "set" or "inherit", Ageing
// as "ageing_seconds", and zero or unset fields left out.
func (c Config) MarshalJSON() ([]byte, error) {
	j := jsonConfig{
		Name: c.Name, VNI: c.VNI, Group: c.Group, Local: c.Local, Device: c.Device, DeviceIndex: c.DeviceIndex,
		LinkNetNSID: c.LinkNetNSID, Port: c.Port, SrcPorts: c.SrcPorts, TTL: c.TTL, TTLInherit: c.TTLInherit,
		TOS: c.TOS, DF: c.DF, Label: c.Label, LabelInherit: c.LabelInherit, Learning: c.Learning, Limit: c.Limit,
		Proxy: c.Proxy, RSC: c.RSC, L2Miss: c.L2Miss, L3Miss: c.L3Miss, CollectMetadata: c.CollectMetadata,
		VNIFilter: c.VNIFilter, UDPChecksum: c.UDPChecksum, UDPZeroChecksum6TX: c.UDPZeroChecksum6TX,
		UDPZeroChecksum6RX: c.UDPZeroChecksum6RX, RemoteChecksumTX: c.RemoteChecksumTX,
		RemoteChecksumRX: c.RemoteChecksumRX, RemoteChecksumNoPartial: c.RemoteChecksumNoPartial, GBP: c.GBP,
		GPE: c.GPE, LocalBypass: c.LocalBypass, MulticastRoute: c.MulticastRoute, ReservedBits: c.ReservedBits,
		MTU: c.MTU, TxQueueLen: c.TxQueueLen, Alias: c.Alias, Up: c.Up, Index: c.Index,
	}
	if c.Ageing != nil {
		j.AgeingSeconds = Ptr(c.Ageing.Seconds())
	}
	if len(c.HardwareAddr) > 0 {
		j.HardwareAddr = c.HardwareAddr.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON writes. It does not validate:
// call Validate.
func (c *Config) UnmarshalJSON(b []byte) error {
	var j jsonConfig
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("vxlan: decode Config: %w", err)
	}
	*c = Config{
		Name: j.Name, VNI: j.VNI, Group: j.Group, Local: j.Local, Device: j.Device, DeviceIndex: j.DeviceIndex,
		LinkNetNSID: j.LinkNetNSID, Port: j.Port, SrcPorts: j.SrcPorts, TTL: j.TTL, TTLInherit: j.TTLInherit,
		TOS: j.TOS, DF: j.DF, Label: j.Label, LabelInherit: j.LabelInherit, Learning: j.Learning, Limit: j.Limit,
		Proxy: j.Proxy, RSC: j.RSC, L2Miss: j.L2Miss, L3Miss: j.L3Miss, CollectMetadata: j.CollectMetadata,
		VNIFilter: j.VNIFilter, UDPChecksum: j.UDPChecksum, UDPZeroChecksum6TX: j.UDPZeroChecksum6TX,
		UDPZeroChecksum6RX: j.UDPZeroChecksum6RX, RemoteChecksumTX: j.RemoteChecksumTX,
		RemoteChecksumRX: j.RemoteChecksumRX, RemoteChecksumNoPartial: j.RemoteChecksumNoPartial, GBP: j.GBP,
		GPE: j.GPE, LocalBypass: j.LocalBypass, MulticastRoute: j.MulticastRoute, ReservedBits: j.ReservedBits,
		MTU: j.MTU, TxQueueLen: j.TxQueueLen, Alias: j.Alias, Up: j.Up, Index: j.Index,
	}
	if s := j.AgeingSeconds; s != nil {
		if *s < 0 || *s > math.MaxUint32 {
			return &ConfigError{Field: "Ageing", Value: *s, Accepted: "ageing_seconds from 1 to 4294967295"}
		}
		c.Ageing = Ptr(time.Duration(math.Round(*s * float64(time.Second))))
	}
	if j.HardwareAddr != "" {
		mac, err := net.ParseMAC(j.HardwareAddr)
		if err != nil {
			return &ConfigError{Field: "HardwareAddr", Value: j.HardwareAddr, Accepted: "a MAC address such as 02:00:00:00:00:01"}
		}
		c.HardwareAddr = mac
	}
	return nil
}

// MarshalText returns the DF value's name: "unset", "set" or "inherit".
func (d DF) MarshalText() ([]byte, error) {
	if d > DFInherit {
		return nil, &ConfigError{Field: "DF", Value: uint8(d), Accepted: "DFUnset, DFSet or DFInherit (0..2)"}
	}
	return []byte(d.String()), nil
}

// UnmarshalText parses "unset", "set" or "inherit".
func (d *DF) UnmarshalText(b []byte) error {
	for _, v := range []DF{DFUnset, DFSet, DFInherit} {
		if v.String() == string(b) {
			*d = v
			return nil
		}
	}
	return &ConfigError{Field: "DF", Value: fmt.Sprintf("%q", b), Accepted: `"unset", "set" or "inherit"`}
}
