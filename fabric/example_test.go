package fabric_test

import (
	"errors"
	"fmt"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

// Options are read through the one option table: names match without
// regard to case, and a refusal names the option and what it accepts.
func ExampleParseOptions() {
	spec, err := fabric.ParseOptions(map[string]string{"vxlanid": "42", "Peers": "198.18.0.2, 198.18.0.3", "mode": "macvlan"})
	if err != nil {
		panic(err)
	}
	fmt.Println(spec.Kind, spec.VXLAN.VNI, spec.Peers, spec.MacvlanMode)

	_, err = fabric.ParseOptions(map[string]string{"VxlanId": "42", "TTL": "300"})
	var oe *fabric.OptionError
	if errors.As(err, &oe) {
		fmt.Println(oe.Option, "|", err)
	}
	// Output:
	// macvlan 42 [198.18.0.2 198.18.0.3] bridge
	// TTL | option TTL=300: out of range; accepted: 0..255
}

// The option table documents every option; the table of docs/options.md is made
// from it.
func ExampleOptions() {
	for _, o := range fabric.Options() {
		if o.Name == "Port" {
			fmt.Printf("%s: %s (default %s; accepted %s) for %s\n", o.Name, o.Meaning, o.Default, o.Accepted, fabric.KindsText(o.Kinds))
		}
	}
	// Output:
	// Port: UDP destination port (default 4789 (IANA); accepted 1..65535) for vxlan, bridge mode; vxlan, mode=macvlan
}

// Every host derives a network's anycast gateway MAC from its VNI and
// port, so hosts agree on it without talking; the gateway link's name
// comes from the network's ID.
func ExampleNetworkSpec_GatewayMAC() {
	spec, err := fabric.ParseOptions(map[string]string{"VxlanId": "60"})
	if err != nil {
		panic(err)
	}
	spec.ID = "01a607a2ea87c0ffee"
	fmt.Println(spec.GatewayMAC(), fabric.GatewayLinkName(spec.ID))
	// Output:
	// 12:bc:2d:11:06:67 gw_01a607a2ea87
}
