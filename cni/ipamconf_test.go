package cni

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/ipam"
	"github.com/containernetworking/cni/pkg/types"
)

func TestParseIPAMConfig(t *testing.T) {
	for _, tc := range []struct {
		name, conf, args string
		want             ipamConf
	}{
		{
			name: "one subnet under the vxlan plugin",
			conf: `{"cniVersion":"1.0.0","name":"vx70","type":"vxlan","VxlanId":70,
				"ipam":{"type":"vxlan-ipam","subnet":"198.19.70.0/24","routes":[{"dst":"0.0.0.0/0"}]}}`,
			want: ipamConf{CNIVersion: "1.0.0", Network: "vx70", DataDir: defaultIPAMDataDir, Derive: true, Ranges: []ipamRange{{
				Subnet: pfx("198.19.70.0/24"), Range: pfx("198.19.70.0/24"), Gateway: addr("198.19.70.1"),
			}}, Requested: []netip.Addr{{}}},
		},
		{
			name: "dual stack under CNI's bridge, an address asked for by the ips capability",
			conf: `{"name":"b","type":"bridge","bridge":"br9","runtimeConfig":{"ips":["fd00:9::20/64"]},
				"ipam":{"type":"vxlan-ipam","dataDir":"/run/x","ranges":[
					{"subnet":"198.19.9.0/24","range":"198.19.9.128/25","gateway":"198.19.9.254"},{"subnet":"fd00:9::/64"}]}}`,
			want: ipamConf{Network: "b", DataDir: "/run/x", Link: "br9", Ranges: []ipamRange{
				{Subnet: pfx("198.19.9.0/24"), Range: pfx("198.19.9.128/25"), Gateway: addr("198.19.9.254")},
				{Subnet: pfx("fd00:9::/64"), Range: pfx("fd00:9::/64"), Gateway: addr("fd00:9::1")},
			}, Requested: []netip.Addr{{}, addr("fd00:9::20")}},
		},
		{
			name: "CNI's bridge by default, an address asked for in CNI_ARGS",
			conf: `{"name":"b","type":"bridge","ipam":{"type":"vxlan-ipam","subnet":"198.19.9.0/24"}}`,
			args: "IgnoreUnknown=1;IP=198.19.9.7",
			want: ipamConf{Network: "b", DataDir: defaultIPAMDataDir, Link: "cni0", Ranges: []ipamRange{
				{Subnet: pfx("198.19.9.0/24"), Range: pfx("198.19.9.0/24"), Gateway: addr("198.19.9.1")},
			}, Requested: []netip.Addr{addr("198.19.9.7")}},
		},
		{
			name: "CNI's macvlan, args.cni.ips, an explicit link",
			conf: `{"name":"m","type":"macvlan","master":"eth1","args":{"cni":{"ips":["198.19.9.8"]}},
				"ipam":{"type":"vxlan-ipam","subnet":"198.19.9.0/24","link":"eth2"}}`,
			want: ipamConf{Network: "m", DataDir: defaultIPAMDataDir, Link: "eth2", Ranges: []ipamRange{
				{Subnet: pfx("198.19.9.0/24"), Range: pfx("198.19.9.0/24"), Gateway: addr("198.19.9.1")},
			}, Requested: []netip.Addr{addr("198.19.9.8")}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseIPAMConfig([]byte(tc.conf), tc.args)
			if err != nil {
				t.Fatal(err)
			}
			c.Routes = nil
			if c.CNIVersion != tc.want.CNIVersion || c.Network != tc.want.Network || c.DataDir != tc.want.DataDir ||
				c.Link != tc.want.Link || c.Derive != tc.want.Derive || !slices.Equal(c.Ranges, tc.want.Ranges) ||
				!slices.Equal(c.Requested, tc.want.Requested) {
				t.Errorf("got  %+v\nwant %+v", *c, tc.want)
			}
		})
	}
	c, err := parseIPAMConfig([]byte(`{"name":"r","type":"vxlan","ipam":{"subnet":"198.19.1.0/24","routes":[{"dst":"0.0.0.0/0","gw":"198.19.1.9"}]}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 1 || c.Routes[0].Dst.String() != "0.0.0.0/0" || c.Routes[0].GW.String() != "198.19.1.9" {
		t.Errorf("routes: %v", c.Routes)
	}
}

func TestParseIPAMConfigRefusals(t *testing.T) {
	for _, tc := range []struct{ conf, args, want string }{
		{`{"name":"n","type":"vxlan","ipam":{}}`, "", "ipam: no subnet"},
		{`{"name":"n","type":"vxlan","ipam":{"subnet":"198.19.1.0"}}`, "", `ipam subnet "198.19.1.0": not a prefix`},
		{`{"name":"n","type":"vxlan","ipam":{"range":"198.19.1.0/25"}}`, "", "ipam: range or gateway without a subnet"},
		{`{"name":"n","type":"vxlan","ipam":{"subnet":"198.19.1.0/24","range":"198.19.2.0/25"}}`, "", "ipam range 198.19.2.0/25: not a prefix inside"},
		{`{"name":"n","type":"vxlan","ipam":{"subnet":"198.19.1.0/24","range":"198.19.0.0/16"}}`, "", "ipam range 198.19.0.0/16: not a prefix inside"},
		{`{"name":"n","type":"vxlan","ipam":{"subnet":"198.19.1.0/24","gateway":"198.19.2.1"}}`, "", `ipam gateway "198.19.2.1": not an address in`},
		{`{"name":"n","type":"vxlan","ipam":{"ranges":[{"subnet":"198.19.1.0/24"},{"subnet":"198.19.1.128/25"}]}}`, "",
			"ipam: subnets 198.19.1.0/24 and 198.19.1.128/25 overlap"},
		{`{"name":"n","type":"ptp","ipam":{"subnet":"198.19.1.0/24"}}`, "", "ipam: no link to probe the segment through"},
		{`{"name":"n","type":"macvlan","ipam":{"subnet":"198.19.1.0/24"}}`, "", "ipam: no link to probe the segment through"},
		{`{"name":"n","type":"vxlan","ipam":{"subnet":"198.19.1.0/24","dataDir":"rel"}}`, "", `ipam dataDir "rel": not an absolute path`},
		{`{"name":"n","type":"vxlan","ipam":{"subnet":"198.19.1.0/24"}}`, "IP=198.19.2.3", "requested address 198.19.2.3: in none of the subnets 198.19.1.0/24"},
		{`{"name":"n","type":"vxlan","ipam":{"subnet":"198.19.1.0/24"}}`, "IP=198.19.1.3,198.19.1.4", "requested addresses 198.19.1.3 and 198.19.1.4: two in"},
		{`{"name":"n","type":"vxlan","ipam":{"subnet":"198.19.1.0/24"}}`, "IP=x", `requested address "x": not an IP address`},
		{`{"name":"../n","type":"vxlan","ipam":{"subnet":"198.19.1.0/24"}}`, "", `network name "../n": not a file name`},
		{`{"type":"vxlan","ipam":{"subnet":"198.19.1.0/24"}}`, "", "network configuration: no name"},
	} {
		_, err := parseIPAMConfig([]byte(tc.conf), tc.args)
		var ce *types.Error
		if !errors.As(err, &ce) || ce.Code != types.ErrInvalidNetworkConfig || !strings.HasPrefix(ce.Msg, tc.want) {
			t.Errorf("%s %s: %v, want code 7 and %q", tc.conf, tc.args, err, tc.want)
		}
	}
}

// The lease files: one per address, written whole, read back with their
// holders; the lock file and temporary files are not leases; a second
// opener waits for the first to close.
func TestLeaseDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	if d, err := openLeases(dir, false); d != nil || err != nil {
		t.Fatalf("open of a missing directory without create: %v, %v", d, err)
	}
	d, err := openLeases(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	d.containerID, d.ifName = "c1", "eth0"
	now := time.Now().UTC().Truncate(time.Second)
	for _, a := range []string{"198.19.1.5", "fd00:1::5"} {
		if err := d.PutLease("p", ipam.Lease{Addr: addr(a), Use: ipam.UseContainer, Time: now}); err != nil {
			t.Fatal(err)
		}
	}
	d.containerID = "c2"
	if err := d.PutLease("p", ipam.Lease{Addr: addr("198.19.1.6"), Time: now}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".lease-123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	leases, err := d.read()
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 3 {
		t.Fatalf("leases: %+v", leases)
	}
	mine := of(leases, "c1", "eth0")
	if len(mine) != 2 || mine[0].Addr != addr("198.19.1.5") || mine[1].Addr != addr("fd00:1::5") || !mine[0].Time.Equal(now) {
		t.Errorf("leases of c1/eth0: %+v", mine)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "198.19.1.6")); !strings.Contains(string(b), `"containerID":"c2","ifname":"eth0"`) {
		t.Errorf("lease file: %s", b)
	}
	if err := d.DeleteLease("p", addr("198.19.1.6")); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteLease("p", addr("198.19.1.6")); err != nil {
		t.Errorf("deleting a lease that is gone: %v", err)
	}

	opened := make(chan *leaseDir)
	go func() {
		d2, err := openLeases(dir, false)
		if err != nil {
			t.Error(err)
		}
		opened <- d2
	}()
	select {
	case <-opened:
		t.Fatal("a second opener got the lock while the first held it")
	case <-time.After(100 * time.Millisecond):
	}
	d.close()
	d2 := <-opened
	if leases, err := d2.read(); err != nil || len(leases) != 2 {
		t.Errorf("leases after a delete: %+v, %v", leases, err)
	}
	d2.close()
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }
