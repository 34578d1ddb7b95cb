package vxlan

import (
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidateRejects(t *testing.T) {
	ok := Config{Name: "vx0", VNI: 1}
	cases := []struct {
		name  string
		mod   func(*Config)
		field string
		says  string // a fragment of the accepted values
	}{
		{"empty name", func(c *Config) { c.Name = "" }, "Name", "1 to 15 bytes"},
		{"long name", func(c *Config) { c.Name = "a-very-long-name" }, "Name", "1 to 15 bytes"},
		{"slash in name", func(c *Config) { c.Name = "vx/0" }, "Name", "'/'"},
		{"space in name", func(c *Config) { c.Name = "vx 0" }, "Name", "white space"},
		{"dot name", func(c *Config) { c.Name = ".." }, "Name", `".."`},
		{"VNI too large", func(c *Config) { c.VNI = 1 << 24 }, "VNI", "0..16777215"},
		{"bad device", func(c *Config) { c.Device = "eth0:1" }, "Device", "1 to 15 bytes"},
		{"multicast without device", func(c *Config) { c.Group = netip.MustParseAddr("239.1.1.1") }, "Group", "a multicast group needs a VTEP device"},
		{"unspecified group", func(c *Config) { c.Group = netip.IPv4Unspecified() }, "Group", "unicast"},
		{"multicast local", func(c *Config) { c.Local = netip.MustParseAddr("239.1.1.1") }, "Local", "unicast"},
		{"family mix", func(c *Config) {
			c.Group, c.Local = netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("fd00::1")
		}, "Local", "not of the family of Group"},
		{"port range reversed", func(c *Config) { c.SrcPorts = PortRange{Low: 6000, High: 5000} }, "SrcPorts", "Low <= High"},
		{"port range reversed", func(c *Config) { c.SrcPorts = PortRange{Low: 6000, High: 5000} }, "SrcPorts", "Low <= High"},
		{"bad DF", func(c *Config) { c.DF = 3 }, "DF", "DFInherit"},
		{"label too large", func(c *Config) {
			c.Group, c.Label = netip.MustParseAddr("fd00::2"), 1<<20
		}, "Label", "0..1048575"},
		{"label on IPv4", func(c *Config) { c.Label = 5 }, "Label", "IPv6"},
		{"ageing 0", func(c *Config) { c.Ageing = Ptr(time.Duration(0)) }, "Ageing", "turns 0 into 300s"},
		{"ageing fraction", func(c *Config) { c.Ageing = Ptr(1500 * time.Millisecond) }, "Ageing", "whole seconds"},
		{"ageing too long", func(c *Config) { c.Ageing = Ptr(math.MaxUint32*time.Second + time.Second) }, "Ageing", "4294967295s"},
		{"GPE without CollectMetadata", func(c *Config) { c.GPE, c.Learning = true, Ptr(false) }, "CollectMetadata", "when GPE is set"},
		{"GPE with learning", func(c *Config) { c.GPE, c.CollectMetadata = true, true }, "Learning", "Ptr(false)"},
		{"GPE with proxy", func(c *Config) { c.GPE, c.CollectMetadata, c.Learning, c.Proxy = true, true, Ptr(false), true }, "Proxy", "false"},
		{"underlay by name in another namespace", func(c *Config) { c.Device, c.LinkNetNSID = "ul0", Ptr(int32(1)) }, "Device", "DeviceIndex"},
		{"vnifilter alone", func(c *Config) { c.VNIFilter = true }, "VNIFilter", "CollectMetadata"},
		{"mtu too small", func(c *Config) { c.MTU = 67 }, "MTU", "68..65535"},
		{"mtu too large", func(c *Config) { c.MTU = 65536 }, "MTU", "68..65535"},
		{"multicast mac", func(c *Config) { c.HardwareAddr = net.HardwareAddr{1, 0, 0, 0, 0, 1} }, "HardwareAddr", "unicast"},
		{"zero mac", func(c *Config) { c.HardwareAddr = make(net.HardwareAddr, 6) }, "HardwareAddr", "00:00:00:00:00:00"},
		{"short mac", func(c *Config) { c.HardwareAddr = net.HardwareAddr{2, 0, 0} }, "HardwareAddr", "6-byte"},
		{"negative txqlen", func(c *Config) { c.TxQueueLen = -1 }, "TxQueueLen", "0..4294967295"},
		{"long alias", func(c *Config) { c.Alias = strings.Repeat("a", 256) }, "Alias", "255 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			before := c
			err := c.Validate()
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Validate() = %v, want a ConfigError for %s saying %q", err, tc.field, tc.says)
			}
			if !reflect.DeepEqual(c, before) {
				t.Fatal("Validate modified the Config")
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, c := range []Config{
		{Name: "vx0"},
		{Name: "vx0", VNI: MaxVNI, Port: 1, SrcPorts: PortRange{Low: 1, High: 1}},
		{Name: "vx0", VNI: 1, Group: netip.MustParseAddr("ff05::1"), Device: "eth0", Label: MaxLabel, LabelInherit: false},
		{Name: "vx0", VNI: 1, Local: netip.MustParseAddr("fd00::1"), LabelInherit: true},
		{Name: "vx0", CollectMetadata: true, VNIFilter: true, GPE: true, Learning: Ptr(false)},
		{Name: "vx0", VNI: 1, SrcPorts: PortRange{High: 100}, Ageing: Ptr(math.MaxUint32 * time.Second)},
		{Name: "vx0", VNI: 1, Group: netip.MustParseAddr("239.1.1.1"), DeviceIndex: 3, LinkNetNSID: Ptr(int32(0))},
		{Name: "vx0", VNI: 1, Ageing: Ptr(MaxAgeing), TTLInherit: true, DF: DFInherit, MTU: 68},
		{Name: "vx0", VNI: 1, TTL: 64, TTLInherit: true}, // the kernel takes both and keeps the TTL unused
		// IPv4-mapped addresses are IPv6 ones to the kernel, never multicast.
		{Name: "vx0", VNI: 1, Group: netip.MustParseAddr("::ffff:239.1.1.1"), Local: netip.MustParseAddr("::ffff:198.18.0.1")},
		{Name: "123456789012345", VNI: 1, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Alias: strings.Repeat("a", 255)},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", c, err)
		}
	}
}

func TestDiffComparesOnlyWhatIsSet(t *testing.T) {
	have := Config{Name: "vx0", VNI: 5, Port: 4789, Learning: Ptr(true), Ageing: Ptr(300 * time.Second),
		MTU: 1450, Device: "eth0", Local: netip.MustParseAddr("198.18.0.1"), UDPChecksum: Ptr(true)}
	if d := diff(&Config{Name: "vx0", VNI: 5}, &have); len(d) != 0 {
		t.Fatalf("unset fields compared: %+v", d)
	}
	want := Config{Name: "vx0", VNI: 6, Port: 8472, MTU: 1400, Learning: Ptr(false), Proxy: true, Device: "eth1"}
	got := map[string]string{}
	for _, d := range diff(&want, &have) {
		got[d.Field] = d.Have + "->" + d.Want
	}
	wantDiffs := map[string]string{"VNI": "5->6", "Port": "4789->8472", "MTU": "1450->1400", "Learning": "true->false", "Proxy": "false->true", "Device": "eth0->eth1"}
	if !reflect.DeepEqual(got, wantDiffs) {
		t.Fatalf("diffs %v, want %v", got, wantDiffs)
	}
	if d := diff(&Config{Name: "vx0", VNI: 5, Ageing: Ptr(time.Minute)}, &Config{Name: "vx0", VNI: 5, Port: 4789}); len(d) != 1 || d[0].Have != "unset" {
		t.Fatalf("optional field the kernel did not report: %+v", d)
	}
}

func TestMismatchError(t *testing.T) {
	err := &MismatchError{Name: "vx0", Diffs: []Diff{{"VNI", "6", "5"}, {"Port", "4789", "8472"}}}
	if got := err.Error(); got != "vxlan: vx0 exists with other settings: VNI is 5, want 6; Port is 8472, want 4789" {
		t.Fatal(got)
	}
	if !errors.Is(err, ErrExists) {
		t.Fatal("MismatchError does not match ErrExists")
	}
}

// FuzzValidate: Validate never panics, never modifies its input, and what it
// accepts is within the kernel's ranges.
func FuzzValidate(f *testing.F) {
	f.Add("vx0", uint32(42), "239.1.1.1", "198.18.0.1", "eth0", uint16(4789), uint16(1), uint16(2), uint8(0), uint8(3), uint32(0), int64(300), 1500)
	f.Add("vx/0", uint32(1<<24), "fd00::2", "", "", uint16(0), uint16(9), uint16(2), uint8(64), uint8(0), uint32(1<<20), int64(0), 0)
	f.Fuzz(func(t *testing.T, name string, vni uint32, group, local, dev string, port, low, high uint16, ttl, df uint8, label uint32, ageing int64, mtu int) {
		c := Config{Name: name, VNI: vni, Device: dev, Port: port, SrcPorts: PortRange{Low: low, High: high}, TTL: ttl, DF: DF(df), Label: label, MTU: mtu}
		c.Group, _ = netip.ParseAddr(group)
		c.Local, _ = netip.ParseAddr(local)
		if ageing != 0 {
			c.Ageing = Ptr(time.Duration(ageing) * time.Second)
		}
		before := c
		err := c.Validate()
		if !reflect.DeepEqual(c, before) {
			t.Fatal("Validate modified the Config")
		}
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field == "" || ce.Accepted == "" {
				t.Fatalf("error without field or accepted values: %v", err)
			}
			return
		}
		if c.VNI > MaxVNI || c.Label > MaxLabel || ValidateName(c.Name) != nil || c.DF > DFInherit ||
			(c.Group.IsValid() && c.Local.IsValid() && c.Group.Is4() != c.Local.Is4()) ||
			(c.SrcPorts.Low > c.SrcPorts.High) || (c.MTU != 0 && (c.MTU < 68 || c.MTU > 65535)) {
			t.Fatalf("accepted %+v", c)
		}
	})
}

func TestConfigJSONRoundTrip(t *testing.T) {
	full := Config{
		Name: "vx0", VNI: 42, Group: netip.MustParseAddr("239.1.1.1"), Local: netip.MustParseAddr("198.18.1.1"),
		Device: "ul0", DeviceIndex: 3, LinkNetNSID: Ptr(int32(0)), Port: 4789, SrcPorts: PortRange{Low: 5000, High: 6000},
		TTL: 64, TOS: 1, DF: DFInherit, Learning: Ptr(false), Ageing: Ptr(300 * time.Second), Limit: 10,
		Proxy: true, RSC: true, L2Miss: true, L3Miss: true, UDPChecksum: Ptr(true), RemoteChecksumTX: true,
		RemoteChecksumRX: true, RemoteChecksumNoPartial: true, GBP: true, LocalBypass: Ptr(true), MulticastRoute: true,
		ReservedBits: &HeaderBits{Flags: 0x08000000, VNI: 0xff}, MTU: 1450, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0xab, 1},
		TxQueueLen: 500, Alias: "a", Up: true, Index: 7,
	}
	v6 := Config{Name: "vx6", Group: netip.MustParseAddr("fd00::2"), Label: 5, LabelInherit: true, TTLInherit: true,
		CollectMetadata: true, VNIFilter: true, UDPZeroChecksum6TX: true, UDPZeroChecksum6RX: true, GPE: true}
	for _, cfg := range []Config{full, v6, {Name: "vx1"}} {
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var back Config
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(cfg, back) {
			t.Errorf("round trip changed the Config:\n%+v\n%s\n%+v", cfg, b, back)
		}
	}
	b, _ := json.Marshal(full)
	for _, want := range []string{`"group":"239.1.1.1"`, `"hardware_addr":"02:00:00:00:ab:01"`, `"ageing_seconds":300`,
		`"src_ports":"5000-6000"`, `"df":"inherit"`, `"learning":false`, `"index":7`, `"link_netnsid":0`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	if b, _ := json.Marshal(Config{Name: "vx1"}); string(b) != `{"name":"vx1","vni":0}` {
		t.Errorf("zero fields are not left out: %s", b)
	}
	var c Config
	for _, bad := range []string{`{"df":"sometimes"}`, `{"hardware_addr":"nope"}`, `{"src_ports":"9-1"}`, `{"ageing_seconds":-1}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s decoded without error", bad)
		}
	}
}

// Whatever JSON decodes into a Config encodes and decodes back to the same
// Config.
func FuzzConfigJSON(f *testing.F) {
	f.Add([]byte(`{"name":"vx0","vni":42,"group":"239.1.1.1","device":"ul0","src_ports":"5000-6000","df":"set","ageing_seconds":300,"hardware_addr":"02:00:00:00:00:01","learning":false}`))
	f.Add([]byte(`{"name":"vx6","local":"fd00::1","label":5,"reserved_bits":{"flags":1,"vni":2},"link_netnsid":3,"device_index":4}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Config
		if json.Unmarshal(b, &c) != nil {
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			return // a value JSON cannot show (DF out of range)
		}
		var back Config
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%s does not decode: %v", out, err)
		}
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("round trip changed the Config:\n%+v\n%s\n%+v", c, out, back)
		}
	})
}

// testdata/config-go-default.json is what json.Marshal wrote for a Config
// before Config had JSON methods (made by this package at 2d4ea80): state
// files hold it, and it still decodes to the same Config.
func TestConfigJSONReadsGoDefaultEncoding(t *testing.T) {
	b, err := os.ReadFile("testdata/config-go-default.json")
	if err != nil {
		t.Fatal(err)
	}
	var got Config
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Name: "vx0", VNI: 42, Group: netip.MustParseAddr("239.1.1.1"), Local: netip.MustParseAddr("198.18.1.1"),
		Device: "ul0", Port: 4789, SrcPorts: PortRange{Low: 5000, High: 6000},
		TTL: 64, TOS: 1, DF: DFInherit, Learning: Ptr(false), Ageing: Ptr(300 * time.Second), Limit: 10,
		Proxy: true, L2Miss: true, UDPChecksum: Ptr(true), GBP: true, LocalBypass: Ptr(true),
		ReservedBits: &HeaderBits{Flags: 0x08000000, VNI: 0xff}, MTU: 1450, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0xab, 1},
		TxQueueLen: 500, Alias: "a", Up: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if err := json.Unmarshal([]byte(`{"Name":"vx0","DF":"set"}`), &got); err == nil {
		t.Error("a legacy DF that is not a number decoded")
	}
}
