package rtlink_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"golang.org/x/sys/unix"
)

// A link whose IPv6 is turned off before it comes up has no IPv6 address
// and no IPv6 route; the setting is the link's own, in the connection's
// namespace, not the caller's.
func TestIntegrationDisableIPv6(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	ctx := context.Background()
	for _, name := range []string{"off0", "on0"} {
		if _, err := c.CreateLink(ctx, &rtlink.Link{Name: name, Data: &rtlink.Bridge{}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DisableIPv6(ctx, "off0"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"off0", "on0"} {
		if err := c.SetUp(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := ns.Exec("sysctl", "-n", "net.ipv6.conf.off0.disable_ipv6"); err != nil || strings.TrimSpace(v) != "1" {
		t.Fatalf("off0 disable_ipv6 = %q, %v", v, err)
	}
	if v, err := ns.Exec("sysctl", "-n", "net.ipv6.conf.on0.disable_ipv6"); err != nil || strings.TrimSpace(v) != "0" {
		t.Fatalf("on0 disable_ipv6 = %q, %v", v, err)
	}
	if out := ns.IP("-6", "route", "show", "table", "all", "dev", "off0"); strings.TrimSpace(out) != "" {
		t.Fatalf("IPv6 routes of off0:\n%s", out)
	}
	if out := ns.IP("-6", "route", "show", "table", "all", "dev", "on0"); !strings.Contains(out, "ff00::/8") {
		t.Fatalf("on0, IPv6 on, should have its multicast route:\n%s", out)
	}
	if out := ns.IP("-6", "addr", "show", "dev", "off0"); strings.TrimSpace(out) != "" {
		t.Fatalf("IPv6 addresses of off0:\n%s", out)
	}
	err := c.DisableIPv6(ctx, "nosuch0")
	var op *rtlink.OpError
	if !errors.Is(err, rtlink.ErrNotFound) || !errors.As(err, &op) || op.Op != rtlink.OpDisableIPv6 || op.Link != "nosuch0" {
		t.Fatalf("missing link: %v", err)
	}
	if err := c.DisableIPv6(ctx, "../all"); err == nil {
		t.Fatal("a path was taken for a link name")
	}
}

// Where /proc/sys cannot be written (a container's read-only /proc/sys,
// such as a Docker managed plugin's, which a root test here does not
// have), DisableIPv6 sets the link's address generation to none instead:
// no IPv6 address, no link-local route.
func TestIntegrationDisableIPv6ReadOnlyProc(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	defer rtlink.SetWriteFile(func(string, []byte, os.FileMode) error {
		return &os.PathError{Op: "open", Path: "disable_ipv6", Err: unix.EROFS}
	})()
	ctx := context.Background()
	if _, err := c.CreateLink(ctx, &rtlink.Link{Name: "ro0", Data: &rtlink.Bridge{}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DisableIPv6(ctx, "ro0"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUp(ctx, "ro0"); err != nil {
		t.Fatal(err)
	}
	if out := ns.IP("-d", "link", "show", "ro0"); !strings.Contains(out, "addrgenmode none") {
		t.Fatalf("address generation not none:\n%s", out)
	}
	if out := ns.IP("-6", "addr", "show", "dev", "ro0"); strings.TrimSpace(out) != "" {
		t.Fatalf("IPv6 addresses of ro0:\n%s", out)
	}
	if out := ns.IP("-6", "route", "show", "table", "all", "dev", "ro0"); strings.Contains(out, "fe80::/64") {
		t.Fatalf("link-local route of ro0:\n%s", out)
	}
}

// SetIPv4Conf sets the link's own arp_ignore and arp_announce, as the
// kernel shows them under /proc/sys, and no other link's; a missing link
// is ErrNotFound naming the operation and the link.
func TestIntegrationSetIPv4Conf(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	ctx := context.Background()
	for _, name := range []string{"conf0", "other0"} {
		if _, err := c.CreateLink(ctx, &rtlink.Link{Name: name, Data: &rtlink.Bridge{}}); err != nil {
			t.Fatal(err)
		}
	}
	err := c.SetIPv4Conf(ctx, "conf0", rtlink.IPv4Conf{Setting: rtlink.IPv4ARPIgnore, Value: 1},
		rtlink.IPv4Conf{Setting: rtlink.IPv4ARPAnnounce, Value: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, want string }{
		{"net.ipv4.conf.conf0.arp_ignore", "1"},
		{"net.ipv4.conf.conf0.arp_announce", "2"},
		{"net.ipv4.conf.other0.arp_ignore", "0"},
		{"net.ipv4.conf.other0.arp_announce", "0"},
	} {
		if v, err := ns.Exec("sysctl", "-n", c.key); err != nil || strings.TrimSpace(v) != c.want {
			t.Errorf("%s = %q (%v), want %s", c.key, v, err, c.want)
		}
	}
	// ReadIPv4Conf reads the connection's namespace, not the caller's.
	if got, err := c.ReadIPv4Conf(ctx, "conf0", "arp_announce"); err != nil || got != "2" {
		t.Errorf("ReadIPv4Conf conf0 arp_announce = %q, %v; want 2", got, err)
	}
	ns.Exec("sysctl", "-w", "net.ipv4.conf.all.rp_filter=1")
	if got, err := c.ReadIPv4Conf(ctx, "all", "rp_filter"); err != nil || got != "1" {
		t.Errorf("ReadIPv4Conf all rp_filter = %q, %v; want 1", got, err)
	}
	if _, err := c.ReadIPv4Conf(ctx, "nosuch0", "rp_filter"); !errors.Is(err, rtlink.ErrNotFound) {
		t.Errorf("ReadIPv4Conf of a missing link: %v", err)
	}
	if _, err := c.ReadIPv4Conf(ctx, "..", "rp_filter"); err == nil {
		t.Error("ReadIPv4Conf took a path for a link name")
	}
	err = c.SetIPv4Conf(ctx, "nosuch0", rtlink.IPv4Conf{Setting: rtlink.IPv4ARPIgnore, Value: 1})
	var op *rtlink.OpError
	if !errors.Is(err, rtlink.ErrNotFound) || !errors.As(err, &op) || op.Op != rtlink.OpSetIPv4Conf || op.Link != "nosuch0" {
		t.Fatalf("missing link: %v", err)
	}
}

// SetIPv6AddrGenModeNone leaves IPv6 on but makes no address: the link
// comes up without a link-local address and takes the addresses given.
func TestIntegrationSetIPv6AddrGenModeNone(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	ctx := context.Background()
	l, err := c.CreateLink(ctx, &rtlink.Link{Name: "gen0", Data: &rtlink.Bridge{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetIPv6AddrGenModeNone(ctx, "gen0"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUp(ctx, "gen0"); err != nil {
		t.Fatal(err)
	}
	if out := ns.IP("-d", "link", "show", "gen0"); !strings.Contains(out, "addrgenmode none") {
		t.Fatalf("address generation not none:\n%s", out)
	}
	if err := c.AddAddress(ctx, l, netip.MustParsePrefix("fd00:4::1/128")); err != nil {
		t.Fatal(err)
	}
	out := ns.IP("-6", "-br", "addr", "show", "dev", "gen0")
	if !strings.Contains(out, "fd00:4::1/128") || strings.Contains(out, "fe80:") {
		t.Fatalf("IPv6 addresses of gen0, want fd00:4::1/128 alone:\n%s", out)
	}
}
