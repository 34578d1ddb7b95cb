package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

func TestIntegrationFabric(t *testing.T) {
	testns.RequireRoot(t)
	cases := []struct {
		name string
		o    options
		want []string
	}{
		{"Unicast", options{hosts: 3, vni: 4242}, []string{"3      4242  unicast  IPv4      6/6"}},
		{"Multicast", options{hosts: 3, vni: 4243, multicast: true}, []string{"multicast 239.1.1.1  IPv4      6/6"}},
		{"IPv6UnderlayAddHost", options{hosts: 3, vni: 4244, ipv6: true, add: true}, []string{"unicast  IPv6      6/6", "added host 4", "pairs with it reachable 6/6, other hosts' links untouched: true"}},
		{"IPv6Multicast", options{hosts: 3, vni: 4245, ipv6: true, multicast: true}, []string{"multicast ff05::101  IPv6      6/6"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.prefix = fmt.Sprintf("fabt%d-%d", os.Getpid(), i)
			var out bytes.Buffer
			if err := run(t.Context(), tc.o, &out); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			got := strings.Join(strings.Fields(out.String()), " ") // column widths aside
			for _, w := range tc.want {
				if !strings.Contains(got, strings.Join(strings.Fields(w), " ")) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			ns, _ := exec.Command("ip", "netns", "list").Output()
			if strings.Contains(string(ns), tc.o.prefix) {
				t.Fatalf("namespaces left:\n%s", ns)
			}
		})
	}
}

// A failure half way still removes everything made so far.
func TestIntegrationFabricCleansUpOnFailure(t *testing.T) {
	testns.RequireRoot(t)
	prefix := fmt.Sprintf("fabf%d", os.Getpid())
	// A VNI the kernel accepts but a name clash made on purpose: the
	// namespace of host 2 exists already, so adding it fails.
	if out, err := exec.Command("ip", "netns", "add", prefix+"-h2").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", prefix+"-h2").Run()
	var out bytes.Buffer
	err := run(t.Context(), options{hosts: 3, vni: 9, prefix: prefix}, &out)
	if err == nil || !strings.Contains(err.Error(), prefix+"-h2") {
		t.Fatalf("err = %v", err)
	}
	ns, _ := exec.Command("ip", "netns", "list").Output()
	for _, made := range []string{prefix + "-ul", prefix + "-h1"} {
		if strings.Contains(string(ns), made+" ") || strings.Contains(string(ns), made+"\n") {
			t.Fatalf("%s left after a failure:\n%s", made, ns)
		}
	}
}

// A lab whose underlay cannot be made: newLab returns no lab and an error
// naming the namespace, and run reports it instead of closing a nil lab.
func TestIntegrationFabricUnderlayFailure(t *testing.T) {
	testns.RequireRoot(t)
	prefix := fmt.Sprintf("fabu%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", prefix+"-ul").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", prefix+"-ul").Run()
	l, err := newLab(t.Context(), prefix, false)
	if l != nil || err == nil || !strings.Contains(err.Error(), prefix+"-ul") {
		t.Fatalf("newLab = %v, %v", l, err)
	}
	var out bytes.Buffer
	err = run(t.Context(), options{hosts: 2, vni: 9, prefix: prefix}, &out)
	if err == nil || !strings.Contains(err.Error(), prefix+"-ul") {
		t.Fatalf("run = %v", err)
	}
}
