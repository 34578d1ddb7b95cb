package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// Replays, in order, every request dockerd 20.10 sent a network driver in
// the standalone recording, checking each answer byte for byte where it
// carries information and checking that the host was asked for what the
// user typed.
func TestReplayStandalone(t *testing.T) {
	srv, _, host := newTestServer(t, fabric.ScopeLocal, "")
	want := map[string]string{
		"001": `{"Implements":["NetworkDriver","IpamDriver"]}`,
		"002": `{"Scope":"local","ConnectivityScope":"local"}`,
		"003": `{}`,
		"004": `{}`,
		"005": `{"Err":"vxlan: option fail: unknown option; accepted: ` + optionNames() + `"}`,
		"006": `{"Interface":{"MacAddress":"02:42:c6:13:46:0a"}}`,
		"007": `{"InterfaceName":{"SrcName":"vcc2f35605cdc5","DstPrefix":"eth"},"Gateway":"198.19.70.1"}`,
		"008": `{}`,
		"011": `{}`,
		"012": `{}`,
		"013": `{}`,
		"014": `{"Interface":{"MacAddress":"02:42:c6:13:47:02"}}`,
		"015": `{"InterfaceName":{"SrcName":"vc3eac2846932c","DstPrefix":"eth"},"Gateway":"198.19.71.1","GatewayIPv6":"fd00:71::1"}`,
		"039": `{}`,
		"040": `{}`,
	}
	for _, f := range loadFixtures(t, "dockerd-20.10") {
		status, got := post(t, srv, f.call, f.body)
		if status != 200 {
			t.Fatalf("%s: status %d: %s", f.file, status, got)
		}
		if w, ok := want[f.file[:3]]; ok && got != w {
			t.Errorf("%s %s:\n got %s\nwant %s", f.file, f.call, got, w)
		}
		if f.call == "NetworkDriver.EndpointOperInfo" && !strings.HasPrefix(got, `{"Value":{`) {
			t.Errorf("%s: %s", f.file, got)
		}
		if f.file[:3] != "005" && strings.Contains(got, `"Err"`) {
			t.Errorf("%s: unexpected error %s", f.file, got)
		}
		// What the host was asked, right after the networks were made.
		if f.file[:3] == "004" {
			rec70 := host.networks["33ad4c3bfae553e4bb6327488598aebe46bafa0ac506b50dd7355f5bec733217"]
			if rec70 == nil || rec70.VXLAN.VNI != 70 || rec70.VXLAN.Device != "vxu1" || rec70.VXLAN.Group != netip.MustParseAddr("239.1.1.70") ||
				rec70.VXLAN.Name != "vx_33ad4c3bfae5" || rec70.Bridge.Name != "br_33ad4c3bfae5" || rec70.ContainerMTU != 1450 ||
				!rec70.HostGateway || fmt.Sprint(rec70.Gateways) != "[198.19.70.1/24]" {
				t.Fatalf("rec70 spec: %+v", rec70)
			}
			rec71 := host.networks["8bec5197232e2b88f154b7a025fd6c529d94454eed5bde5bf2f8ffacd8913505"]
			if rec71 == nil || rec71.VXLAN.VNI != 71 || fmt.Sprint(rec71.Gateways) != "[198.19.71.1/24 fd00:71::1/64]" {
				t.Fatalf("rec71 spec: %+v", rec71)
			}
		}
	}
	if len(host.networks) != 0 || len(host.endpoints) != 0 {
		t.Fatalf("left on the host: %d networks, %d endpoints", len(host.networks), len(host.endpoints))
	}
	for _, c := range host.calls {
		if strings.Contains(c, "11b5ce7d903b") {
			t.Fatalf("the refused network reached the host: %v", host.calls)
		}
	}
}

// The swarm recording: AllocateNetwork on the manager returns the options,
// and every node's CreateNetwork receives them in place of the user's, as
// dockerd does; the network is created, used and deleted again and again.
func TestReplaySwarm(t *testing.T) {
	for _, node := range []string{"manager", "worker"} {
		t.Run(node, func(t *testing.T) {
			srv, d, host := newTestServer(t, fabric.ScopeGlobal, "eth0")
			allocated := `{"VxlanId":"80"}` // what the manager's AllocateNetwork answers
			for _, f := range loadFixtures(t, "dockerd-20.10-swarm/"+node) {
				body := f.body
				if f.call == "NetworkDriver.CreateNetwork" {
					body = strings.Replace(body, `{"allocated-by":"manager"}`, allocated, 1)
				}
				status, got := post(t, srv, f.call, body)
				if status != 200 || strings.Contains(got, `"Err"`) {
					t.Fatalf("%s: %d %s", f.file, status, got)
				}
				switch f.call {
				case "NetworkDriver.GetCapabilities":
					if got != `{"Scope":"global","ConnectivityScope":"global"}` {
						t.Fatalf("%s: %s", f.file, got)
					}
				case "NetworkDriver.AllocateNetwork":
					if got != `{"Options":`+allocated+`}` {
						t.Fatalf("%s: %s", f.file, got)
					}
				case "NetworkDriver.CreateNetwork":
					for _, s := range host.networks {
						if s.VXLAN.VNI != 80 || s.HostGateway {
							t.Fatalf("%s: spec %+v (global scope must not put the gateway on the host)", f.file, s)
						}
					}
				case "NetworkDriver.Join":
					if !strings.Contains(got, `"Gateway":"198.19.80.1"`) {
						t.Fatalf("%s: %s", f.file, got)
					}
				}
			}
			if len(host.networks) != 0 || len(host.endpoints) != 0 {
				t.Fatalf("left: %v %v", host.networks, host.endpoints)
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			if len(d.nodes) == 0 {
				t.Fatal("no discovered node recorded")
			}
		})
	}
}

// fabric.Options that cannot be right are refused at CreateNetwork with the
// option named and the accepted values, and nothing reaches the host.
func TestCreateNetworkRejectsBadOptions(t *testing.T) {
	cases := []struct {
		opts map[string]string
		says string
	}{
		{map[string]string{"Group": "239.1.1.1"}, "option VxlanId: missing: option Group is for vxlan networks"},
		{map[string]string{"": "bond0.65,eth0.65"}, `option \"\"=bond0.65,eth0.65: an option needs a name (-o NAME=VALUE)`},
		{map[string]string{"VxlanId": "1", "mode": "ipvlan"}, "option mode=ipvlan: unknown mode; accepted: bridge or macvlan"},
		{map[string]string{"VxlanId": "1", "mode": "macvlan", "bridgeName": "br9"}, "option bridgeName=br9: not for a network of kind vxlan, mode=macvlan; accepted: networks of kind vxlan, bridge mode"},
		{map[string]string{"VxlanId": "1", "mode": "macvlan", "HostGateway": "true"}, "option HostGateway=true: not for a network of kind vxlan, mode=macvlan"},
		{map[string]string{"VxlanId": "1", "parent": "eth0"}, "option parent=eth0: not for a network of kind vxlan, bridge mode; accepted: networks of kind parent (no VxlanId)"},
		{map[string]string{"VxlanId": "1", "macvlan_mode": "vepa"}, "option macvlan_mode=vepa: not for a network of kind vxlan, bridge mode"},
		{map[string]string{"parent": "eth0", "macvlan_mode": "source"}, "option macvlan_mode=source: unknown macvlan mode; accepted: bridge, private, vepa or passthru"},
		{map[string]string{"parent": "eth0", "HostGateway": "true"}, "option HostGateway=true: not for a network of kind parent (no VxlanId)"},
		{map[string]string{"parent": "eth0", "parent-file": "/etc/p.toml"}, "option parent-file=/etc/p.toml: given with parent"},
		{map[string]string{"parent-file": "etc/../../p.toml"}, "option parent-file=etc/../../p.toml: a path with a '..' element"},
		{map[string]string{"parent": " , ,"}, "option parent=, ,: no interface name"},
		{map[string]string{"parent": "eth0, bad/name"}, `option parent=eth0, bad/name: \"bad/name\" is not a valid interface name`},
		{map[string]string{"parent": "toothbrush, pancakes, eth9.10"}, "option parent=toothbrush,pancakes,eth9.10: none of toothbrush, pancakes, eth9.10 exists on this host"},
		{map[string]string{"parent-file": "/etc/shadow"}, "option parent-file=/etc/shadow: outside the parent directory /etc/docker-vxlan-plugin; accepted: a file in the plugin's parent directory"},
		{map[string]string{"VxlanId": "1", "VtepDev": "eth8, eth9"}, "option VtepDev=eth8,eth9: none of eth8, eth9 exists on this host"},
		{map[string]string{"VxlanId": "abc"}, "option VxlanId=abc: not a number; accepted: 0..16777215"},
		{map[string]string{"VxlanId": "16777216"}, "option VxlanId=16777216: out of range"},
		{map[string]string{"VxlanId": "0x1000000"}, "option VxlanId=0x1000000: out of range"},
		{map[string]string{"VxlanId": "1", "TTL": "256"}, "option TTL=256: out of range; accepted: 0..255"},
		{map[string]string{"VxlanId": "1", "Learning": "maybe"}, "option Learning=maybe: not a boolean; accepted: true or false"},
		{map[string]string{"VxlanId": "1", "Group": "239.1.1.300"}, "option Group=239.1.1.300: not an IP address"},
		{map[string]string{"VxlanId": "1", "Group": "239.1.1.1"}, "option Group=239.1.1.1: a multicast group needs a VTEP device"},
		{map[string]string{"VxlanId": "1", "vxlanHardwareAddr": "01:00:5e:00:00:01"}, "option vxlanHardwareAddr=01:00:5e:00:00:01: not a 6-byte unicast MAC address"},
		{map[string]string{"VxlanId": "1", "bridgeHardwareAddr": "zz"}, "option bridgeHardwareAddr=zz: not a MAC address"},
		{map[string]string{"VxlanId": "1", "vxlanName": "a-name-too-long-x"}, "option vxlanName=a-name-too-long-x: not a valid interface name; accepted: an interface name: 1 to 15 bytes"},
		{map[string]string{"VxlanId": "1", "bridgeName": "br/0"}, "option bridgeName=br/0: not a valid interface name"},
		{map[string]string{"VxlanId": "1", "vxlanName": "vx%d"}, "option vxlanName=vx%d: not a valid interface name; accepted: an interface name: 1 to 15 bytes of printable ASCII, no '/', ':', '%' or spaces"},
		{map[string]string{"VxlanId": "1", "bridgeName": "br\x1b[31m"}, `option bridgeName=br\u001b[31m: not a valid interface name`},
		{map[string]string{"VxlanId": "1", "VtepDev": "eth0, eth%d"}, "option VtepDev=eth0, eth%d: \\\"eth%d\\\" is not a valid interface name"},
		{map[string]string{"parent": "eth\u00e9"}, "is not a valid interface name"},
		{map[string]string{"VxlanId": "1", "PortLow": "6000", "PortHigh": "5000"}, "option PortLow=6000: above PortHigh=5000"},
		{map[string]string{"VxlanId": "1", "PortLow": "6000"}, "option PortHigh: missing: PortLow and PortHigh go together"},
		{map[string]string{"VxlanId": "1", "Port": "0"}, "option Port=0: out of range; accepted: 1..65535"},
		{map[string]string{"VxlanId": "1", "vxlanMTU": "67"}, "option vxlanMTU=67: out of range; accepted: 68..65535"},
		{map[string]string{"VxlanId": "1", "Age": "0"}, "option Age=0: out of range; accepted: 1..4294967"},
		{map[string]string{"VxlanId": "1", "Age": "10", "NoAge": "true"}, "option Age=10: contradicts NoAge=true"},
		{map[string]string{"VxlanId": "1", "Peers": "198.18.0.2,fd00::2"}, "option Peers=198.18.0.2,fd00::2: mixes IPv4 and IPv6"},
		{map[string]string{"VxlanId": "1", "Peers": "239.1.1.1"}, "option Peers=239.1.1.1: 239.1.1.1 is not a unicast address"},
		{map[string]string{"VxlanId": "1", "SrcAddr": "fd00::1", "Group": "198.18.0.9"}, "option SrcAddr=fd00::1: not of the family of Group=198.18.0.9"},
		{map[string]string{"VxlanId": "1", "VtepDev": "eth9"}, "option VtepDev=eth9: no such interface on this host"},
		{map[string]string{"VxlanId": "1", "vxlanid": "2"}, "given twice"},
		{map[string]string{"VxlanId": "1", "Tos": "inheritt"}, "option Tos=inheritt: not a number; accepted: 0..255 or inherit"},
		{map[string]string{"VxlanId": "1", "HostGateway": "perhaps"}, "option HostGateway=perhaps: not a boolean"},
		{map[string]string{"VxlanId": "1", "vxlanName": "same", "bridgeName": "same"}, "option bridgeName=same: same name as the vxlan interface"},
	}
	srv, _, host := newTestServer(t, fabric.ScopeLocal, "")
	for i, tc := range cases {
		opts, _ := json.Marshal(tc.opts)
		body := fmt.Sprintf(`{"NetworkID":"n%02d","Options":{"com.docker.network.generic":%s},"IPv4Data":[{"Gateway":"198.19.1.1/24","Pool":"198.19.1.0/24"}]}`, i, opts)
		_, got := post(t, srv, "NetworkDriver.CreateNetwork", body)
		if !strings.Contains(got, tc.says) || !strings.HasPrefix(got, `{"Err":"vxlan: `) {
			t.Errorf("%v:\n got %s\nwant it to say %q", tc.opts, got, tc.says)
		}
	}
	if len(host.calls) != 0 {
		t.Fatalf("the host was asked to do %v", host.calls)
	}
}

func TestOptionKeysAreCaseInsensitive(t *testing.T) {
	s, err := fabric.ParseOptions(map[string]string{"vxlanid": "0x2a", "VTEPDEV": "eth0", "group": "239.1.1.2", "noage": "yes", "PEERS": " 198.18.0.2 , 198.18.0.3,", "portlow": "5000", "PortHigh": "6000", "tos": "inherit"})
	if err != nil {
		t.Fatal(err)
	}
	if s.VXLAN.VNI != 42 || fmt.Sprint(s.VTEPCandidates) != "[eth0]" || s.VXLAN.Group.String() != "239.1.1.2" || len(s.Peers) != 2 ||
		s.VXLAN.SrcPorts.Low != 5000 || s.VXLAN.TOS != 1 || s.VXLAN.Ageing == nil {
		t.Fatalf("%+v", s)
	}
}

// MTU rule: vxlanMTU if given, else the VTEP device's MTU less 50 (IPv4
// underlay) or 70 (IPv6); bridgeMTU, when given, is the containers' MTU.
func TestContainerMTU(t *testing.T) {
	cases := []struct {
		opts             map[string]string
		vxlanMTU, ctrMTU int
	}{
		{map[string]string{"VxlanId": "1", "VtepDev": "eth0"}, 1450, 1450},
		{map[string]string{"VxlanId": "1", "VtepDev": "jumbo"}, 8950, 8950},
		{map[string]string{"VxlanId": "1", "VtepDev": "jumbo", "SrcAddr": "fd00::1"}, 8930, 8930},
		{map[string]string{"VxlanId": "1", "VtepDev": "jumbo", "vxlanMTU": "1400"}, 1400, 1400},
		{map[string]string{"VxlanId": "1", "VtepDev": "eth0", "bridgeMTU": "1300"}, 1450, 1300},
		{map[string]string{"VxlanId": "1"}, 1450, 1450},
	}
	for _, tc := range cases {
		_, d, _ := newTestServer(t, fabric.ScopeLocal, "")
		s, err := d.specFor(t.Context(), "id", tc.opts, nil, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if s.VXLAN.MTU != tc.vxlanMTU || s.ContainerMTU != tc.ctrMTU {
			t.Errorf("%v: vxlan MTU %d, container MTU %d; want %d, %d", tc.opts, s.VXLAN.MTU, s.ContainerMTU, tc.vxlanMTU, tc.ctrMTU)
		}
	}
}

// The daemon's -vtepdev is the default; a network's VtepDev overrides it.
func TestVTEPDeviceDefault(t *testing.T) {
	_, d, _ := newTestServer(t, fabric.ScopeLocal, "eth0")
	s, err := d.specFor(t.Context(), "id", map[string]string{"VxlanId": "1"}, nil, nil, false)
	if err != nil || s.VXLAN.Device != "eth0" {
		t.Fatalf("%+v %v", s, err)
	}
	s, err = d.specFor(t.Context(), "id", map[string]string{"VxlanId": "1", "VtepDev": "jumbo"}, nil, nil, false)
	if err != nil || s.VXLAN.Device != "jumbo" {
		t.Fatalf("%+v %v", s, err)
	}
	_, d, _ = newTestServer(t, fabric.ScopeLocal, "eth9")
	_, err = d.specFor(t.Context(), "id", map[string]string{"VxlanId": "1"}, nil, nil, false)
	if err == nil || !strings.Contains(err.Error(), "the plugin's default VTEP device eth9: no such interface on this host") || !errors.Is(err, vxlan.ErrNotFound) {
		t.Fatalf("missing -vtepdev device: %v", err)
	}
	_, err = d.specFor(t.Context(), "id", map[string]string{"VxlanId": "1", "VtepDev": "bond0,eth7"}, nil, nil, false)
	var oe *fabric.OptionError
	if !errors.As(err, &oe) || oe.Option != "VtepDev" || !errors.Is(err, vxlan.ErrNotFound) {
		t.Fatalf("missing VtepDev devices: %v", err)
	}
}

func TestCreateNetworkIsIdempotentAndChecksConflicts(t *testing.T) {
	srv, _, host := newTestServer(t, fabric.ScopeLocal, "")
	body := `{"NetworkID":"aaaaaaaaaaaa1","Options":{"com.docker.network.generic":{"VxlanId":"5"}}}`
	for i := 0; i < 2; i++ {
		if _, got := post(t, srv, "NetworkDriver.CreateNetwork", body); got != `{}` {
			t.Fatal(got)
		}
	}
	if len(host.calls) != 1 {
		t.Fatalf("host calls %v", host.calls)
	}
	_, got := post(t, srv, "NetworkDriver.CreateNetwork", `{"NetworkID":"bbbbbbbbbbbb","Options":{"com.docker.network.generic":{"VxlanId":"5"}}}`)
	if !strings.Contains(got, "option VxlanId=5: already used by network aaaaaaaaaaaa") {
		t.Fatal(got)
	}
	_, got = post(t, srv, "NetworkDriver.CreateNetwork", `{"NetworkID":"bbbbbbbbbbbb","Options":{"com.docker.network.generic":{"VxlanId":"5","Port":"4789"}}}`)
	if !strings.Contains(got, "option VxlanId=5: already used by network aaaaaaaaaaaa") {
		t.Fatalf("the default port and 4789 are the same port: %s", got)
	}
	_, got = post(t, srv, "NetworkDriver.CreateNetwork", `{"NetworkID":"cccccccccccc","Options":{"com.docker.network.generic":{"VxlanId":"6","vxlanName":"vx_aaaaaaaaaaaa"}}}`)
	if !strings.Contains(got, "option vxlanName=vx_aaaaaaaaaaaa: already used by network aaaaaaaaaaaa") {
		t.Fatal(got)
	}
}

// A host failure leaves no state entry behind: the same network can be
// created afterwards.
func TestCreateNetworkHostFailureLeavesNoState(t *testing.T) {
	srv, d, host := newTestServer(t, fabric.ScopeLocal, "")
	host.failAt = "CreateNetwork vx_dddddddddddd"
	body := `{"NetworkID":"dddddddddddd","Options":{"com.docker.network.generic":{"VxlanId":"7"}}}`
	if _, got := post(t, srv, "NetworkDriver.CreateNetwork", body); !strings.Contains(got, "injected failure") {
		t.Fatal(got)
	}
	if len(d.networks) != 0 {
		t.Fatal("state entry left after a failed create")
	}
	host.failAt = ""
	if _, got := post(t, srv, "NetworkDriver.CreateNetwork", body); got != `{}` {
		t.Fatal(got)
	}
}

// Requests that are not what dockerd sends get a clear answer, and never
// change state.
func TestHostileRequests(t *testing.T) {
	srv, d, _ := newTestServer(t, fabric.ScopeLocal, "")
	cases := []struct {
		call, body string
		status     int
		says       string
	}{
		{"NetworkDriver.CreateNetwork", `{"NetworkID":`, 400, "bad request"},
		{"NetworkDriver.CreateNetwork", `{"NetworkID":"x","Options":{"com.docker.network.generic":{"VxlanId":5}}}`, 200, "option VxlanId=5: not a string"},
		{"NetworkDriver.CreateNetwork", `{"NetworkID":"x","Options":{"com.docker.network.generic":{"VxlanId":"5"}},"IPv4Data":[{"Gateway":"198.19.1.1"}]}`, 200, `IPv4 gateway \"198.19.1.1\": not an address in CIDR notation`},
		{"NetworkDriver.CreateNetwork", `{"Options":{}}`, 200, "no NetworkID"},
		{"NetworkDriver.CreateNetwork", `{"NetworkID":"y","Options":{"com.docker.network.generic":{"VxlanId":"5"}}}` + strings.Repeat(" ", MaxRequestBytes), 413, "request body over"},
		{"NetworkDriver.CreateEndpoint", `{"NetworkID":"nope","EndpointID":"e1","Interface":{"Address":"198.19.1.2/24"}}`, 200, "network nope is not known"},
		{"NetworkDriver.Join", `{"NetworkID":"nope","EndpointID":"e1"}`, 200, "network nope is not known"},
		{"NetworkDriver.Leave", `{"NetworkID":"nope","EndpointID":"e1"}`, 200, "network nope is not known"},
		{"NetworkDriver.DeleteNetwork", `{"NetworkID":"nope"}`, 200, "{}"},
		{"NetworkDriver.EndpointOperInfo", `{"NetworkID":"nope","EndpointID":"e1"}`, 200, `{"Value":{}}`},
		{"NetworkDriver.EndpointOperInfo", `garbage`, 200, `{"Value":{}}`},
		{"NetworkDriver.NoSuchCall", `{}`, 404, "unknown call"},
		{"NetworkDriver.AllocateNetwork", `{"NetworkID":"sw1","Options":{"VxlanId":"80"}}`, 200, "AllocateNetwork is a swarm manager's call for a global-scope driver, and this plugin reports scope local"},
		{"NetworkDriver.FreeNetwork", `{"NetworkID":"sw1"}`, 200, "FreeNetwork is a swarm manager's call"},
		{"NetworkDriver.DiscoverNew", `{"DiscoveryType":1,"DiscoveryData":"not an object"}`, 200, "node discovery data"},
		// IDs become link names and state keys: only what dockerd makes.
		{"NetworkDriver.CreateNetwork", `{"NetworkID":"../../x","Options":{"com.docker.network.generic":{"VxlanId":"5"}}}`, 400, "NetworkID: not an ID dockerd makes; accepted: 1 to 64 lowercase letters and digits"},
		{"NetworkDriver.CreateNetwork", `{"NetworkID":"` + strings.Repeat("a", 65) + `","Options":{"com.docker.network.generic":{"VxlanId":"5"}}}`, 400, "NetworkID: not an ID dockerd makes"},
		{"NetworkDriver.CreateNetwork", `{"networkid":"A%d","Options":{"com.docker.network.generic":{"VxlanId":"5"}}}`, 400, "NetworkID: not an ID dockerd makes"},
		{"NetworkDriver.CreateEndpoint", `{"NetworkID":"nope","EndpointID":"e1 x","Interface":{"Address":"198.19.1.2/24"}}`, 400, "EndpointID: not an ID dockerd makes"},
		{"NetworkDriver.DeleteEndpoint", `{"NetworkID":"nope","EndpointID":"e1\n"}`, 400, "EndpointID: not an ID dockerd makes"},
		{"NetworkDriver.EndpointOperInfo", `{"NetworkID":"nope","EndpointID":"../e1"}`, 200, `{"Value":{}}`},
		// Nesting is bounded before anything is decoded.
		{"NetworkDriver.CreateNetwork", `{"NetworkID":"x","Options":{"a":` + strings.Repeat("[", MaxRequestDepth) + strings.Repeat("]", MaxRequestDepth) + `}}`, 400, "nested more than 32 deep"},
		{"NetworkDriver.Join", strings.Repeat("[", 10000), 400, "nested more than 32 deep"},
		{"NetworkDriver.CreateNetwork", `{"NetworkID":"x","Options":{"com.docker.network.generic":{"VxlanId":"` + strings.Repeat("[", 100) + `"}}}`, 200, "option VxlanId=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[: not a number"},
	}
	for _, tc := range cases {
		status, got := post(t, srv, tc.call, tc.body)
		if status != tc.status || !strings.Contains(got, tc.says) {
			t.Errorf("%s %.60s: %d %s; want %d and %q", tc.call, tc.body, status, got, tc.status, tc.says)
		}
	}
	if len(d.networks) != 0 {
		t.Fatalf("state changed: %v", d.networks)
	}
}

func TestCreateEndpointKeepsDockersFields(t *testing.T) {
	srv, _, host := newTestServer(t, fabric.ScopeLocal, "")
	post(t, srv, "NetworkDriver.CreateNetwork", `{"NetworkID":"n1","Options":{"com.docker.network.generic":{"VxlanId":"9"}},"IPv4Data":[{"Gateway":"198.19.9.1/24"}]}`)
	// A MAC given by the user is kept and not echoed.
	_, got := post(t, srv, "NetworkDriver.CreateEndpoint", `{"NetworkID":"n1","EndpointID":"e1aaaaaaaaaaaa","Interface":{"Address":"198.19.9.5/24","MacAddress":"02:00:00:00:00:99"}}`)
	if got != `{}` || host.endpoints["e1aaaaaaaaaaaa"].MAC.String() != "02:00:00:00:00:99" {
		t.Fatalf("%s %+v", got, host.endpoints)
	}
	// IPv6 only: a random locally administered unicast MAC.
	_, got = post(t, srv, "NetworkDriver.CreateEndpoint", `{"NetworkID":"n1","EndpointID":"e2aaaaaaaaaaaa","Interface":{"AddressIPv6":"fd00:9::5/64"}}`)
	mac := host.endpoints["e2aaaaaaaaaaaa"].MAC
	if !strings.Contains(got, mac.String()) || mac[0]&3 != 2 {
		t.Fatalf("%s %v", got, mac)
	}
	// An IPv6-only endpoint gets no IPv4 gateway.
	_, got = post(t, srv, "NetworkDriver.Join", `{"NetworkID":"n1","EndpointID":"e2aaaaaaaaaaaa"}`)
	if strings.Contains(got, "Gateway") {
		t.Fatalf("Join: %s", got)
	}
}

// 200 concurrent requests on 8 networks, under -race: every endpoint ends
// up created exactly once and every delete finds its endpoint.
func TestConcurrentRequests(t *testing.T) {
	srv, d, host := newTestServer(t, fabric.ScopeLocal, "")
	for n := 0; n < 8; n++ {
		post(t, srv, "NetworkDriver.CreateNetwork", fmt.Sprintf(`{"NetworkID":"net%d","Options":{"com.docker.network.generic":{"VxlanId":"%d"}},"IPv4Data":[{"Gateway":"198.19.%d.1/24"}]}`, n, 100+n, n))
	}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := i % 8
			ep := fmt.Sprintf("ep%03d%010d", i, i)
			body := fmt.Sprintf(`{"NetworkID":"net%d","EndpointID":"%s","Interface":{"Address":"198.19.%d.%d/24"}}`, n, ep, n, 2+i/8)
			if _, got := post(t, srv, "NetworkDriver.CreateEndpoint", body); strings.Contains(got, "Err") {
				t.Error(got)
			}
			if _, got := post(t, srv, "NetworkDriver.Join", fmt.Sprintf(`{"NetworkID":"net%d","EndpointID":"%s"}`, n, ep)); !strings.Contains(got, "SrcName") {
				t.Error(got)
			}
			if _, got := post(t, srv, "NetworkDriver.DeleteEndpoint", fmt.Sprintf(`{"NetworkID":"net%d","EndpointID":"%s"}`, n, ep)); got != `{}` {
				t.Error(got)
			}
		}()
	}
	wg.Wait()
	if len(host.endpoints) != 0 {
		t.Fatalf("%d endpoints left", len(host.endpoints))
	}
	for _, n := range d.networks {
		if len(n.endpoints) != 0 {
			t.Fatalf("state keeps %d endpoints", len(n.endpoints))
		}
	}
}

// slowHost is a fakeHost whose operation op waits until release is closed,
// ignoring its context when deaf is set (a host call that hangs).
type slowHost struct {
	*fakeHost
	op      string
	release chan struct{}
	deaf    bool
}

func (s *slowHost) wait(ctx context.Context, op string) error {
	if op != s.op {
		return nil
	}
	if s.deaf {
		<-s.release
		return nil
	}
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *slowHost) CreateNetwork(ctx context.Context, spec *fabric.NetworkSpec) error {
	if err := s.wait(ctx, "CreateNetwork"); err != nil {
		return err
	}
	return s.fakeHost.CreateNetwork(ctx, spec)
}

func (s *slowHost) LinkMTU(ctx context.Context, name string) (int, error) {
	if err := s.wait(ctx, "LinkMTU"); err != nil {
		return 0, err
	}
	return s.fakeHost.LinkMTU(ctx, name)
}

func (s *slowHost) CreateEndpoint(ctx context.Context, spec *fabric.NetworkSpec, ep *fabric.Endpoint, in *linuxhost.ContainerNS) error {
	if err := s.wait(ctx, "CreateEndpoint"); err != nil {
		return err
	}
	return s.fakeHost.CreateEndpoint(ctx, spec, ep, in)
}

// postWithin posts and fails the test if no answer came within 5 s.
func postWithin(t *testing.T, srv *httptest.Server, call, body string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		resp, err := srv.Client().Post(srv.URL+"/"+call, "", strings.NewReader(body))
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- strings.TrimSpace(string(b))
	}()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no answer after 5 s", call)
		return ""
	}
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testns.Eventually(t, 5*time.Second, 10*time.Millisecond, what, testns.Holds(func() (bool, string) { return cond(), "not yet" }))
}

const testNet = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// A call that runs over its deadline is answered with an error saying so,
// at the deadline: a host call that honours its context is cancelled, and
// one that hangs and then succeeds is undone, so the plugin keeps nothing
// dockerd was told failed.
func TestCallDeadline(t *testing.T) {
	createNet := `{"NetworkID":"` + testNet + `","Options":{"com.docker.network.generic":{"VxlanId":"5"}},"IPv4Data":[{"Gateway":"198.19.5.1/24"}]}`
	createEp := `{"NetworkID":"` + testNet + `","EndpointID":"` + strings.Repeat("e", 64) + `","Interface":{"Address":"198.19.5.2/24"}}`
	for _, tc := range []struct {
		op   string
		deaf bool
	}{{"CreateNetwork", false}, {"CreateNetwork", true}, {"CreateEndpoint", false}, {"CreateEndpoint", true}} {
		t.Run(fmt.Sprintf("%s deaf=%v", tc.op, tc.deaf), func(t *testing.T) {
			host := &slowHost{fakeHost: newFakeHost(), op: tc.op, release: make(chan struct{}), deaf: tc.deaf}
			released := false
			t.Cleanup(func() {
				if !released {
					close(host.release)
				}
			})
			d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(NewHandler(d, WithCallTimeout(100*time.Millisecond)))
			t.Cleanup(srv.Close)
			body := createNet
			if tc.op == "CreateEndpoint" {
				if got := postWithin(t, srv, "NetworkDriver.CreateNetwork", createNet); got != "{}" {
					t.Fatal(got)
				}
				body = createEp
			}
			got := postWithin(t, srv, "NetworkDriver."+tc.op, body)
			if want := `{"Err":"vxlan: NetworkDriver.` + tc.op + ` did not finish within 100ms (context deadline exceeded); it was cancelled`; !strings.HasPrefix(got, want) {
				t.Fatalf("got %s, want %s...", got, want)
			}
			close(host.release)
			released = true
			// Whether the host call gave up or finished late, nothing of
			// it is left, on the host or in the driver.
			eventually(t, "the late call is undone", func() bool {
				host.mu.Lock()
				defer host.mu.Unlock()
				if tc.op == "CreateNetwork" {
					return len(host.networks) == 0
				}
				return len(host.endpoints) == 0
			})
			eventually(t, "the driver forgets it", func() bool {
				if tc.op == "CreateNetwork" {
					_, err := d.lockNetwork(testNet)
					if err == nil {
						d.networks[testNet].mu.Unlock()
					}
					return err != nil
				}
				n, err := d.lockNetwork(testNet)
				if err != nil {
					return false
				}
				defer n.mu.Unlock()
				return len(n.endpoints) == 0
			})
			// dockerd's retry succeeds.
			host.op = ""
			if got := postWithin(t, srv, "NetworkDriver."+tc.op, body); strings.Contains(got, "Err") {
				t.Fatalf("retry: %s", got)
			}
		})
	}
}

// panicHost panics in CreateNetwork.
type panicHost struct{ *fakeHost }

func (panicHost) CreateNetwork(context.Context, *fabric.NetworkSpec) error { panic("boom") }

// A call that panics is answered with an error, and the plugin goes on
// serving.
func TestCallPanics(t *testing.T) {
	d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: panicHost{newFakeHost()}})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServerFor(t, d)
	if got := postWithin(t, srv, "NetworkDriver.CreateNetwork", `{"NetworkID":"n1","Options":{"com.docker.network.generic":{"VxlanId":"5"}}}`); got != `{"Err":"vxlan: NetworkDriver.CreateNetwork failed: internal error (the plugin's log has the details)"}` {
		t.Fatal(got)
	}
	if got := postWithin(t, srv, "Plugin.Activate", ``); got != `{"Implements":["NetworkDriver","IpamDriver"]}` {
		t.Fatal(got)
	}
}

// A repeated CreateNetwork of a network that exists, running over its
// deadline, is answered with the error, and the network stays: only what
// the late call itself made is undone.
func TestCallDeadlineRepeatKeepsNetwork(t *testing.T) {
	host := &slowHost{fakeHost: newFakeHost(), release: make(chan struct{}), deaf: true}
	var log logRecorder
	d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: host, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(d, WithCallTimeout(100*time.Millisecond)))
	t.Cleanup(srv.Close)
	create := `{"NetworkID":"` + testNet + `","Options":{"com.docker.network.generic":{"VxlanId":"5","VtepDev":"eth0"}}}`
	if got := postWithin(t, srv, "NetworkDriver.CreateNetwork", create); got != "{}" {
		t.Fatal(got)
	}
	host.op = "LinkMTU" // the repeat's look at the VTEP device hangs
	if got := postWithin(t, srv, "NetworkDriver.CreateNetwork", create); !strings.Contains(got, "did not finish within 100ms") {
		t.Fatal(got)
	}
	close(host.release)
	eventually(t, "the late call finishes", func() bool { return strings.Contains(log.String(), "call finished after its deadline") })
	if !strings.Contains(log.String(), "undone=false") {
		t.Fatalf("the repeat was undone:\n%s", log.String())
	}
	n, err := d.lockNetwork(testNet)
	if err != nil {
		t.Fatalf("the network went with the repeat: %v", err)
	}
	n.mu.Unlock()
	host.mu.Lock()
	defer host.mu.Unlock()
	if len(host.networks) != 1 {
		t.Fatalf("host networks: %v", host.networks)
	}
}

// logRecorder keeps what a logger writes, for tests that read the log while
// the handler's goroutines write it.
type logRecorder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// optionNames is the list of options a refusal of an unknown option gives.
func optionNames() string {
	var names []string
	for _, o := range fabric.Options() {
		names = append(names, o.Name)
	}
	return strings.Join(names, " ")
}
