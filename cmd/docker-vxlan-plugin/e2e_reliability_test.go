package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// Bad -o values, each refused by `docker network create` with the option
// named, and nothing left on the host or in Docker.
func TestIntegrationDockerBadOptions(t *testing.T) {
	h, ul := oneDockerHost(t)
	h.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.60.0/24", "-o", "VxlanId=60", "good60")
	before := ownedLinks(t, h)
	cases := []struct {
		opts []string
		says string
	}{
		{[]string{"VxlanId=abc"}, "option VxlanId=abc: not a number; accepted: 0..16777215, decimal or 0x-hex"},
		{[]string{"VxlanId=16777216"}, "option VxlanId=16777216: out of range"},
		{[]string{"VxlanId=1", "TTL=300"}, "option TTL=300: out of range; accepted: 0..255"},
		{[]string{"VxlanId=1", "TOS=inheritt"}, "option TOS=inheritt: not a number; accepted: 0..255 or inherit"},
		{[]string{"VxlanId=1", "Learning=maybe"}, "option Learning=maybe: not a boolean; accepted: true or false"},
		{[]string{"VxlanId=1", "Group=239.1.1.300"}, "option Group=239.1.1.300: not an IP address"},
		{[]string{"VxlanId=1", "VtepDev=nosuchdev"}, "option VtepDev=nosuchdev: no such interface on this host"},
		{[]string{"VxlanId=1", "vxlanName=a-name-too-long-x"}, "option vxlanName=a-name-too-long-x: not a valid interface name"},
		{[]string{"VxlanId=1", "bridgeName=br/0"}, "option bridgeName=br/0: not a valid interface name"},
		{[]string{"VxlanId=1", "PortLow=6000", "PortHigh=5000"}, "option PortLow=6000: above PortHigh=5000"},
		{[]string{"VxlanId=1", "PortLow=6000"}, "option PortHigh: missing: PortLow and PortHigh go together"},
		{[]string{"VxlanId=1", "vxlanHardwareAddr=01:00:5e:00:00:01"}, "option vxlanHardwareAddr=01:00:5e:00:00:01: not a 6-byte unicast MAC address"},
		{[]string{"VxlanId=1", "vxlanMTU=67"}, "option vxlanMTU=67: out of range; accepted: 68..65535"},
		{[]string{"VxlanId=1", "Age=0"}, "option Age=0: out of range; accepted: 1..4294967"},
		{[]string{"VxlanId=1", "Peers=198.18.0.2,fd00::2"}, "option Peers=198.18.0.2,fd00::2: mixes IPv4 and IPv6"},
		{[]string{"VxlanId=1", "mode=ipvlan"}, "option mode=ipvlan: unknown mode; accepted: bridge or macvlan"},
		{[]string{"VxlanId=1", "mode=macvlan", "bridgeName=x"}, "option bridgeName=x: not for a network of kind vxlan, mode=macvlan"},
		{[]string{"parent=toothbrush,pancakes"}, "option parent=toothbrush,pancakes: none of toothbrush, pancakes exists on this host"},
		{[]string{"parent=" + ul, "macvlan_mode=source"}, "option macvlan_mode=source: unknown macvlan mode"},
		{[]string{"fail=1"}, "option fail: unknown option; accepted: VxlanId mode VtepDev"},
		{[]string{"VxlanId=1", "vxlanName=" + ul}, "option vxlanName=" + ul + ": " + ul + " exists and is a veth, not a vxlan; it is left alone"},
		{[]string{"VxlanId=60"}, "option VxlanId=60: already used by network"},
		{[]string{"Group=239.1.1.9"}, "option VxlanId: missing: option Group is for vxlan networks"},
	}
	for i, tc := range cases {
		args := []string{"network", "create", "-d", "vxlan", "--subnet", fmt.Sprintf("198.19.%d.0/24", 100+i)}
		for _, o := range tc.opts {
			args = append(args, "-o", o)
		}
		name := fmt.Sprintf("bad%d", i)
		_, err := h.Docker(append(args, name)...)
		if err == nil || !strings.Contains(err.Error(), "Error response from daemon: remote: vxlan: "+tc.says) {
			t.Errorf("%v:\n got %v\nwant %q", tc.opts, err, tc.says)
		}
		if _, err := h.Docker("network", "inspect", name); err == nil {
			t.Errorf("%v: network %s exists", tc.opts, name)
		}
	}
	if after := ownedLinks(t, h); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("links before %v, after %v", before, after)
	}
	if l := h.NS.LinkJSON(ul); l.Master != "" || l.Linkinfo.InfoKind != "veth" {
		t.Fatalf("the underlay device was touched: %+v", l)
	}
	h.RemoveNetwork("good60")
}

// 40 containers started in parallel on 4 networks: all get their
// addresses and reach each other; removed in parallel, nothing is left.
func TestIntegrationDockerParallelContainers(t *testing.T) {
	h, _ := oneDockerHost(t)
	const networks, perNet = 4, 10
	for n := 0; n < networks; n++ {
		h.MustDocker("network", "create", "-d", "vxlan", "--subnet", fmt.Sprintf("198.19.%d.0/24", 70+n), "-o", fmt.Sprintf("VxlanId=%d", 70+n), fmt.Sprintf("par%d", n))
	}
	parallel := func(f func(n, i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, networks*perNet)
		for n := 0; n < networks; n++ {
			for i := 0; i < perNet; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := f(n, i); err != nil {
						errs <- err
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	name := func(n, i int) string { return fmt.Sprintf("p%d-%d", n, i) }
	parallel(func(n, i int) error {
		_, err := h.Docker("run", "-d", "--name", name(n, i), "--net", fmt.Sprintf("par%d", n), "bb", "sleep", "3600")
		return err
	})
	addr := map[string]string{}
	for n := 0; n < networks; n++ {
		for i := 0; i < perNet; i++ {
			ip := h.MustDocker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name(n, i))
			if !strings.HasPrefix(ip, fmt.Sprintf("198.19.%d.", 70+n)) {
				t.Fatalf("%s has address %q", name(n, i), ip)
			}
			addr[name(n, i)] = ip
		}
	}
	// Each container pings the next one on its network.
	parallel(func(n, i int) error {
		dst := addr[name(n, (i+1)%perNet)]
		if out, err := h.Docker("exec", name(n, i), "ping", "-c", "1", "-W", "3", dst); err != nil {
			return fmt.Errorf("%s -> %s: %v\n%s", name(n, i), dst, err, out)
		}
		return nil
	})
	parallel(func(n, i int) error {
		_, err := h.Docker("rm", "-f", name(n, i))
		return err
	})
	// Every container's DeleteEndpoint reached the plugin: no container
	// link is left.
	testns.Eventually(t, 20*time.Second, 50*time.Millisecond, "container links deleted", func() error {
		left := ownedLinks(t, h)
		for _, l := range left {
			if strings.HasPrefix(l, "vh") || strings.HasPrefix(l, "vc") {
				return fmt.Errorf("left: %v", left)
			}
		}
		return nil
	})
	for n := 0; n < networks; n++ {
		h.RemoveNetwork(fmt.Sprintf("par%d", n))
	}
	if left := ownedLinks(t, h); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}

// `docker network rm` followed at once by a create with the same VNI and
// the same link names works: the new network waits for the old one's
// links, which the plugin deletes in the background. Repeated, with a
// container on each network.
func TestIntegrationDockerRecreateSameVNI(t *testing.T) {
	h, _ := oneDockerHost(t)
	for i := 0; i < 3; i++ {
		h.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.19.90.0/24", "-o", "VxlanId=90", "-o", "vxlanName=vxsame", "-o", "bridgeName=brsame", "same")
		h.MustDocker("run", "--rm", "--net", "same", "bb", "true")
		h.RemoveNetwork("same")
	}
	if left := ownedLinks(t, h); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}
