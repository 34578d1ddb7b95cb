package vxlan

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"reflect"
	"time"
)

// plainConfig is Config without its JSON methods, so that they can use the
// field tags.
type plainConfig Config

// jsonConfig is Config as JSON shows it to a person: the fields under their
// tags, with Ageing in seconds and the MAC as text in place of the two
// fields Config tags "-".
type jsonConfig struct {
	plainConfig
	AgeingSeconds *float64 `json:"ageing_seconds,omitempty"`
	HardwareAddr  string   `json:"hardware_addr,omitempty"`
}

// MarshalJSON encodes the Config for people: snake_case keys, addresses and
// the MAC as text, SrcPorts as "LOW-HIGH", DF as "set" or "inherit", Ageing
// as "ageing_seconds", and zero or unset fields left out.
func (c Config) MarshalJSON() ([]byte, error) {
	j := jsonConfig{plainConfig: plainConfig(c)}
	if c.Ageing != nil {
		j.AgeingSeconds = Ptr(c.Ageing.Seconds())
	}
	if len(c.HardwareAddr) > 0 {
		j.HardwareAddr = c.HardwareAddr.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON writes. It also reads the
// encoding Go gives a Config without these methods (field names as keys,
// Ageing in nanoseconds, the MAC in base64, DF as a number), which earlier
// versions of this package wrote and state files may still hold. It does
// not validate: call Validate.
func (c *Config) UnmarshalJSON(b []byte) error {
	// One pass for what MarshalJSON wrote. Go's default encoding is told
	// by its "Name" key: the decoder prefers a key's exact match, so
	// "Name" lands in the probe and "name" in the name field. Only that
	// encoding, or bad input, pays for a second look.
	var j struct {
		jsonConfig
		LegacyName json.RawMessage `json:"Name"`
	}
	if err := json.Unmarshal(b, &j); err != nil || j.LegacyName != nil {
		var keys map[string]json.RawMessage
		if kerr := json.Unmarshal(b, &keys); kerr != nil {
			return fmt.Errorf("vxlan: decode Config: %w", kerr)
		}
		if _, legacy := keys["Name"]; legacy {
			return c.unmarshalLegacy(keys)
		}
		if err != nil {
			return fmt.Errorf("vxlan: decode Config: %w", err)
		}
	}
	*c = Config(j.plainConfig)
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

// unmarshalLegacy decodes Go's default encoding of a Config: each field
// under its own name. DF and SrcPorts, which now read as text, are read
// as the number and the {"Low","High"} object Go wrote for them.
func (c *Config) unmarshalLegacy(keys map[string]json.RawMessage) error {
	*c = Config{}
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		raw, ok := keys[name]
		if !ok {
			continue
		}
		var target any = v.Field(i).Addr().Interface()
		switch name {
		case "DF":
			target = (*uint8)(&c.DF)
		case "SrcPorts":
			target = (*struct{ Low, High uint16 })(&c.SrcPorts)
		case "HardwareAddr":
			target = (*[]byte)(&c.HardwareAddr)
		}
		if err := json.Unmarshal(raw, target); err != nil {
			return fmt.Errorf("vxlan: decode Config field %s: %w", name, err)
		}
	}
	return nil
}
