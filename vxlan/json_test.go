package vxlan

import (
	"encoding/json"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

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
