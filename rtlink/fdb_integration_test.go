package rtlink_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// FDB entries with every attribute rtlink encodes, read back with its own
// decoder and with `bridge -j fdb show`.
func TestIntegrationFDBAttributes(t *testing.T) {
	ns := testns.New(t)
	c := ns.Dial()
	ul := mustLink(t, c, &rtlink.Link{Name: "ul0", Up: true, Data: &rtlink.Veth{PeerName: "ul1"}})
	vx := mustLink(t, c, &rtlink.Link{Name: "vx0", Data: &rtlink.VXLAN{ID: ptr[uint32](100), Port: ptr[uint16](4789), Learning: ptr(false)}})

	base := func() *rtlink.Neigh {
		return &rtlink.Neigh{Family: rtlink.FamilyBridge, LinkIndex: vx.Index, State: rtlink.NUDPermanent, Flags: rtlink.NTFSelf}
	}
	zero := net.HardwareAddr{0, 0, 0, 0, 0, 0}
	mac := net.HardwareAddr{2, 0, 0, 0, 0xdd, 1}

	full := base()
	full.MAC, full.IP, full.VNI, full.Port, full.IfIndex = mac, netip.MustParseAddr("198.18.3.2"), 4242, 8472, ul.Index
	if err := c.AddNeigh(ctx, full); err != nil {
		t.Fatal(err)
	}
	// Exclusive add of the same MAC and remote fails.
	if err := c.AddNeigh(ctx, full); !errors.Is(err, rtlink.ErrExists) {
		t.Fatalf("second AddNeigh: %v", err)
	}
	// Append: two remotes under the all-zero MAC.
	for _, r := range []string{"198.18.3.3", "198.18.3.4"} {
		n := base()
		n.MAC, n.IP = zero, netip.MustParseAddr(r)
		if err := c.AppendNeigh(ctx, n); err != nil {
			t.Fatal(err)
		}
	}

	got, err := c.Neighs(ctx, rtlink.FamilyBridge, vx.Index)
	if err != nil {
		t.Fatal(err)
	}
	var found *rtlink.Neigh
	remotes := 0
	for _, n := range got {
		if n.MAC.String() == mac.String() {
			found = n
		}
		if n.MAC.String() == zero.String() {
			remotes++
		}
	}
	if found == nil || found.IP != full.IP || found.VNI != 4242 || found.Port != 8472 || found.IfIndex != ul.Index ||
		found.State&rtlink.NUDPermanent == 0 || found.Flags&rtlink.NTFSelf == 0 {
		t.Fatalf("entry read back as %+v", found)
	}
	if remotes != 2 {
		t.Fatalf("%d remotes under the zero MAC, want 2: %v", remotes, got)
	}

	out, err := ns.Exec("bridge", "-j", "fdb", "show", "dev", "vx0")
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		MAC  string `json:"mac"`
		Dst  string `json:"dst"`
		Via  string `json:"viaIf"`
		VNI  int    `json:"vni"`
		Port int    `json:"port"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatal(err)
	}
	ok := false
	for _, e := range entries {
		if e.MAC == mac.String() && e.Dst == "198.18.3.2" && e.VNI == 4242 && e.Port == 8472 && e.Via == "ul0" {
			ok = true
		}
	}
	if !ok {
		t.Fatalf("bridge fdb does not show the full entry: %s", out)
	}

	// Delete one remote of the zero MAC, then the full entry.
	n := base()
	n.MAC, n.IP = zero, netip.MustParseAddr("198.18.3.3")
	if err := c.DeleteNeigh(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNeigh(ctx, full); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNeigh(ctx, full); !errors.Is(err, rtlink.ErrNotFound) {
		t.Fatalf("deleting again: %v", err)
	}
	if got, _ := c.Neighs(ctx, rtlink.FamilyBridge, vx.Index); len(got) != 1 || got[0].IP != netip.MustParseAddr("198.18.3.4") {
		t.Fatalf("left: %v", got)
	}
}

func ptr[T any](v T) *T { return &v }

// Every way of choosing a namespace reaches the same one, and Dial never
// changes the caller's thread.
func TestIntegrationNamespaceSelection(t *testing.T) {
	ns := testns.New(t)
	ns.IP("link", "add", "marker0", "type", "bridge")
	sees := func(c *rtlink.Conn) bool {
		t.Helper()
		_, err := c.LinkByName(ctx, "marker0")
		return err == nil
	}

	// By path, and by name under /run/netns.
	for _, p := range []string{ns.Path(), ns.Name} {
		c, err := rtlink.Dial(rtlink.WithNetNSPath(p))
		if err != nil {
			t.Fatal(err)
		}
		if !sees(c) {
			t.Fatalf("WithNetNSPath(%q) is not in the namespace", p)
		}
		c.Close()
	}

	// By the pid of a process inside it.
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var c *rtlink.Conn
	deadline := time.Now().Add(5 * time.Second)
	for {
		// ip netns exec switches namespace then execs sleep: wait for it.
		h, err := rtlink.OpenNetNSPid(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ns.Open().Inode()
		have, _ := h.Inode()
		h.Close()
		if want == have {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the process never entered the namespace")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := rtlink.Dial(rtlink.WithNetNSPid(cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !sees(c) {
		t.Fatal("WithNetNSPid is not in the namespace")
	}
	c.Close()

	// By an open handle from a file descriptor.
	fd, err := unix.Open(ns.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := rtlink.NetNSFromFd(fd)
	c, err = rtlink.Dial(rtlink.WithNetNS(h))
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !sees(c) {
		t.Fatal("WithNetNS(fd) is not in the namespace")
	}
	c.Close()

	// With no option, Dial uses the calling thread's namespace.
	err = ns.Do(func() error {
		c, err := rtlink.Dial()
		if err != nil {
			return err
		}
		defer c.Close()
		if !sees(c) {
			return errors.New("Dial() inside the namespace does not see it")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The test's own thread never moved.
	host, err := rtlink.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if sees(host) {
		t.Fatal("the caller's namespace changed")
	}

	// A path that is not a namespace is refused with its name.
	if _, err := rtlink.OpenNetNS("/proc/self/status"); err == nil {
		t.Fatal("OpenNetNS accepted a regular file")
	}
}
