package cni

import (
	"errors"
	"maps"
	"regexp"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

func TestParseConfig(t *testing.T) {
	conf, err := parseConfig([]byte(`{"cniVersion":"1.0.0","name":"vx70","type":"vxlan","ipam":{"type":"host-local"},
		"runtimeConfig":{},"prevResult":{},"VxlanId":70,"Learning":false,"VtepDev":["bond0","eth0"],"Peers":"198.18.0.2, 198.18.0.3","Port":"4790"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"VxlanId": "70", "Learning": "false", "VtepDev": "bond0,eth0", "Peers": "198.18.0.2, 198.18.0.3", "Port": "4790"}
	if !maps.Equal(conf.Options, want) {
		t.Errorf("options: %v, want %v", conf.Options, want)
	}
	if conf.Name != "vx70" || conf.IPAM.Type != "host-local" {
		t.Errorf("CNI keys: %+v", conf.PluginConf)
	}
	if _, err := fabric.ParseOptions(conf.Options); err != nil {
		t.Errorf("the options do not parse: %v", err)
	}
}

func TestParseConfigRefusals(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`{"name":"n","VxlanId":[1,2]}`, "option VxlanId=[1,2]: a list of other than strings"},
		{`{"name":"n","Group":null}`, "option Group=null: not a string, number, boolean or list of strings"},
		{`{"VxlanId":1}`, "network configuration: no name"},
		{`{"name":`, "network configuration: "},
	} {
		_, err := parseConfig([]byte(tc.conf))
		if err == nil || len(err.Error()) < len(tc.want) || err.Error()[:len(tc.want)] != tc.want {
			t.Errorf("%s: %v, want %q", tc.conf, err, tc.want)
		}
	}
	var oe *fabric.OptionError
	if _, err := parseConfig([]byte(`{"name":"n","TTL":{}}`)); !errors.As(err, &oe) || oe.Option != "TTL" {
		t.Errorf("an object value: %v, want an OptionError for TTL", err)
	}
}

func TestCheckKindRefusesParentNetworks(t *testing.T) {
	conf, err := parseConfig([]byte(`{"name":"n","parent":"eth0"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkKind(conf); err == nil || err.Error() != "option parent=eth0: the CNI plugin makes vxlan networks only (for a macvlan network on a host interface, use CNI's macvlan plugin); accepted: networks with VxlanId" {
		t.Errorf("parent network: %v", err)
	}
	conf, _ = parseConfig([]byte(`{"name":"n"}`))
	if err := checkKind(conf); err == nil || err.Error() != "option VxlanId: missing; accepted: 0..16777215, decimal or 0x-hex" {
		t.Errorf("no options: %v", err)
	}
}

func TestIDs(t *testing.T) {
	id := networkID("vx70")
	if !regexp.MustCompile(`^[0-9a-f]{12}-cni-vx70$`).MatchString(id) || networkID("vx70") != id || networkID("vx71")[:12] == id[:12] {
		t.Errorf("networkID: %q", id)
	}
	if e := endpointID("c", "eth0"); !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(e) || e == endpointID("c", "eth1") {
		t.Errorf("endpointID: %q", e)
	}
}
