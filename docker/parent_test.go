package docker

import (
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// The parent-list cases the macvlan driver's users rely on. Host 1 has
// eth0 and eth1; host 2 has eth0, eth1 and foo (a dummy). The first name that exists wins; a
// name.id wins when its master exists, and is then to be made.
func TestParentListCases(t *testing.T) {
	cases := []struct {
		name, parent string
		host1, host2 string // chosen parent; "+vlan" marks one to be made
	}{
		{"test1", "bond0,  eth0,  eth1", "eth0", "eth0"},
		{"test2 trailing comma", "bond0,eth1,eth0,", "eth1", "eth1"},
		{"test3 spaces", "bond0,  eth1,  eth0,", "eth1", "eth1"},
		{"test4 single", "eth0", "eth0", "eth0"},
		{"test5 invalid first", "toothbrush, eth1, eth0", "eth1", "eth1"},
		{"test6 differs per host", "foo,eth1,pancakes", "eth1", "foo"},
		{"test7 802.1Q per host", "foo.10,eth1.20,pancakes", "eth1.20+vlan", "foo.10+vlan"},
		{"trunk list", "bond0.65, eth3.65, eth1.65, eth0.65", "eth1.65+vlan", "eth1.65+vlan"},
		{"quoted", `"bond0,  eth0,  eth1"`, "eth0", "eth0"},
	}
	hosts := []map[string]int{
		{"eth0": 1500, "eth1": 1500},
		{"eth0": 1500, "eth1": 1500, "foo": 9000},
	}
	for _, tc := range cases {
		for i, links := range hosts {
			_, d, host := newTestServer(t, fabric.ScopeLocal, "")
			host.mtu = links
			spec, err := d.specFor(t.Context(), "net1", map[string]string{"parent": tc.parent}, nil, nil, false)
			if err != nil {
				t.Fatalf("%s on host %d: %v", tc.name, i+1, err)
			}
			got := spec.Parent.Name
			if spec.Parent.VLAN != nil {
				got += "+vlan"
			}
			want := []string{tc.host1, tc.host2}[i]
			if got != want || spec.Kind != fabric.KindParent || spec.MacvlanMode != rtlink.MacvlanModeBridge || spec.HostGateway {
				t.Errorf("%s on host %d: parent %s (kind %s, mode %s), want %s", tc.name, i+1, got, spec.Kind, spec.MacvlanMode, want)
			}
			if strings.Contains(want, "foo") && spec.ContainerMTU != 9000 {
				t.Errorf("%s: container MTU %d, want the parent's 9000", tc.name, spec.ContainerMTU)
			}
		}
	}
}

// No parent is an isolated network in local scope, and in global scope an
// error that shows how to give one.
func TestNoParent(t *testing.T) {
	_, d, _ := newTestServer(t, fabric.ScopeLocal, "")
	spec, err := d.specFor(t.Context(), "0123456789abcdef", map[string]string{}, nil, nil, false)
	if err != nil || !spec.Parent.Isolated || spec.Parent.Name != "pa_0123456789ab" {
		t.Fatalf("%+v %v", spec, err)
	}
	srv, _, _ := newTestServer(t, fabric.ScopeGlobal, "")
	_, got := post(t, srv, "NetworkDriver.CreateNetwork", `{"NetworkID":"n1","Options":{"com.docker.network.generic":{"macvlan_mode":"bridge"}}}`)
	if got != `{"Err":"vxlan: no parent interface was passed, use for example '-o parent=\"eth0,eth1,eth3\"'"}` {
		t.Fatal(got)
	}
}

// VtepDev, and the daemon's -vtepdev, are first-match lists too.
func TestVTEPDeviceList(t *testing.T) {
	_, d, _ := newTestServer(t, fabric.ScopeLocal, "ens3, eth0")
	spec, err := d.specFor(t.Context(), "n", map[string]string{"VxlanId": "1"}, nil, nil, false)
	if err != nil || spec.VXLAN.Device != "eth0" {
		t.Fatalf("%+v %v", spec, err)
	}
	spec, err = d.specFor(t.Context(), "n", map[string]string{"VxlanId": "1", "VtepDev": "bond0, jumbo, eth0"}, nil, nil, false)
	if err != nil || spec.VXLAN.Device != "jumbo" || spec.ContainerMTU != 8950 {
		t.Fatalf("%+v %v", spec, err)
	}
}

// mode=macvlan: no bridge, never a gateway on the host, macvlan mode bridge.
func TestMacvlanModeSpec(t *testing.T) {
	_, d, _ := newTestServer(t, fabric.ScopeLocal, "eth0")
	spec, err := d.specFor(t.Context(), "0123456789abcdef", map[string]string{"VxlanId": "5", "mode": "macvlan"}, []IPAMData{{Gateway: "198.19.5.1/24"}}, nil, false)
	if err != nil || spec.Kind != fabric.KindMacvlan || spec.Bridge.Name != "" || spec.HostGateway || spec.MacvlanMode != rtlink.MacvlanModeBridge ||
		spec.ContainerMTU != 1450 || spec.VXLAN.Name != "vx_0123456789ab" {
		t.Fatalf("%+v %v", spec, err)
	}
}
