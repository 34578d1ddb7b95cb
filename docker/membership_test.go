package docker

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/hashicorp/memberlist"
)

// freePort returns a TCP and UDP port free just now on each of addrs
// (127.0.0.1 when none is given).
func freePort(t *testing.T, addrs ...string) int {
	t.Helper()
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1"}
	}
	for range 20 {
		l, err := net.Listen("tcp", addrs[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if portFree(port, addrs) {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// portFree reports whether TCP and UDP port are free on every one of addrs.
func portFree(port int, addrs []string) bool {
	for _, a := range addrs {
		hp := net.JoinHostPort(a, strconv.Itoa(port))
		l, err := net.Listen("tcp", hp)
		if err != nil {
			return false
		}
		l.Close()
		u, err := net.ListenPacket("udp", hp)
		if err != nil {
			return false
		}
		u.Close()
	}
	return true
}

// fastProbes makes memberlist find a dead node in about a second.
func fastProbes(c *memberlist.Config) {
	c.ProbeInterval, c.ProbeTimeout = 100*time.Millisecond, 50*time.Millisecond
	c.GossipInterval, c.SuspicionMult = 20*time.Millisecond, 2
	c.TCPTimeout = time.Second
}

// memberNode is a driver with a fake host whose membership runs on
// 127.0.0.1:port, gossiping data as its data-path address.
type memberNode struct {
	d    *Driver
	host *fakeHost
	data string
	log  *logRecorder
}

func startMemberNode(t *testing.T, key []byte, port int, data string, seeds ...string) *memberNode {
	t.Helper()
	return startMemberNodeAt(t, key, "127.0.0.1", port, data, seeds...)
}

// startMemberNodeAt starts a memberNode whose advertise address is bind.
func startMemberNodeAt(t *testing.T, key []byte, bind string, port int, data string, seeds ...string) *memberNode {
	t.Helper()
	n := &memberNode{host: newFakeHost(), data: data, log: &logRecorder{}}
	n.d = globalDriver(t, t.TempDir(), n.host, Config{VTEPDevice: "eth0", Logger: slog.New(slog.NewTextHandler(n.log, nil)),
		Membership: MembershipConfig{Key: key, Port: port, Seeds: seeds, tune: fastProbes}})
	t.Cleanup(func() { n.d.Close() })
	n.d.DiscoverNew(t.Context(), NodeDiscoveryData{Address: data, BindAddress: bind, Self: true})
	mustCreate(t, n.d, "a1", map[string]any{"VxlanId": "1000"})
	return n
}

// floodsTo waits until n's network floods to exactly want.
func (n *memberNode) floodsTo(t *testing.T, limit time.Duration, want string) time.Duration {
	t.Helper()
	return testns.Eventually(t, limit, 20*time.Millisecond, n.data+" floods to "+want, testns.Holds(func() (bool, string) {
		got := n.host.peersOf("vx_a1")
		return got == want, got
	}))
}

// The plugins of a swarm find each other through one seed and flood to
// each other's data-path addresses; a plugin that dies is dropped by the
// others; one with another key is refused, says why, and changes nothing
// for the others.
func TestMembershipPeers(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	p0, p1, p2 := freePort(t), freePort(t), freePort(t)
	seed := fmt.Sprintf("127.0.0.1:%d", p0)
	a := startMemberNode(t, key, p0, "198.18.50.1")
	b := startMemberNode(t, key, p1, "198.18.50.2", seed)
	c := startMemberNode(t, key, p2, "198.18.50.3", seed)
	a.floodsTo(t, 10*time.Second, "[198.18.50.2 198.18.50.3]")
	b.floodsTo(t, 10*time.Second, "[198.18.50.1 198.18.50.3]")
	c.floodsTo(t, 10*time.Second, "[198.18.50.1 198.18.50.2]")

	// A node with another key: refused, and it says why.
	other := startMemberNode(t, bytes.Repeat([]byte{8}, 32), freePort(t), "198.18.50.4", seed)
	testns.Eventually(t, 10*time.Second, 50*time.Millisecond, "the refused node's log", testns.Holds(func() (bool, string) {
		l := other.log.String()
		return strings.Contains(l, "membership: cannot join") && strings.Contains(l, "same membership key"), l
	}))
	testns.Eventually(t, 10*time.Second, 50*time.Millisecond, "the seed's log", testns.Holds(func() (bool, string) {
		l := a.log.String()
		return strings.Contains(l, "do not have the same membership key"), l
	}))
	for _, l := range strings.Split(other.log.String(), "\n") {
		if strings.Contains(l, "cannot join") {
			t.Logf("the refused node says: %s", l)
			break
		}
	}
	if got := other.host.peersOf("vx_a1"); got != "[]" {
		t.Fatalf("the node with another key floods to %s", got)
	}
	a.floodsTo(t, time.Second, "[198.18.50.2 198.18.50.3]")

	// c dies: a and b drop it.
	start := time.Now()
	c.d.Close()
	a.floodsTo(t, 10*time.Second, "[198.18.50.2]")
	b.floodsTo(t, 10*time.Second, "[198.18.50.1]")
	t.Logf("a dead member dropped by both others after %v (probe interval 100ms)", time.Since(start).Round(10*time.Millisecond))
}

// On a swarm where the plugin was enabled before the nodes joined, no seed
// is needed: dockerd announces each node joining by its advertise
// address, and the plugin joins the membership there, on its own port.
func TestMembershipJoinsAnnouncedNodes(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 16)
	port := freePort(t, "127.0.0.2", "127.0.0.3")
	a := startMemberNodeAt(t, key, "127.0.0.2", port, "198.18.52.1")
	b := startMemberNodeAt(t, key, "127.0.0.3", port, "198.18.52.2")
	// b joins the swarm after the plugins were enabled: dockerd tells a.
	a.d.DiscoverNew(t.Context(), NodeDiscoveryData{Address: "127.0.0.3"})
	a.floodsTo(t, 10*time.Second, "[198.18.52.2]")
	b.floodsTo(t, 10*time.Second, "[198.18.52.1]")
	if got := fmt.Sprint(a.d.Status(t.Context()).Members); got != fmt.Sprintf("[{127.0.0.3:%d 127.0.0.3 198.18.52.2 false}]", port) {
		t.Fatalf("a's status: members %s", got)
	}
}

// How the sources of peers combine: dockerd's announcement of a node by
// its advertise address becomes the data-path address a member with that
// advertise address gives; a node dockerd says left is dropped though the
// membership has it, until dockerd announces it again; the membership
// losing a member drops it though dockerd announced it.
func TestSwarmPeersCombined(t *testing.T) {
	ctx := t.Context()
	host := newFakeHost()
	d := globalDriver(t, t.TempDir(), host, Config{VTEPDevice: "eth0"})
	d.DiscoverNew(ctx, node("198.18.60.1", true))
	d.DiscoverNew(ctx, node("198.18.60.2", false)) // advertise address of a node
	mustCreate(t, d, "a1", map[string]any{"VxlanId": "1000"})
	check := func(want string) {
		t.Helper()
		if got := host.peersOf("vx_a1"); got != want {
			t.Fatalf("peers: %s, want %s", got, want)
		}
	}
	check("[198.18.60.2]")
	meta := func(data string) []byte { return fmt.Appendf(nil, `{"data":%q}`, data) }
	d.memberChanged("m2", net.ParseIP("198.18.60.2"), meta("198.18.61.2"), true)
	d.memberChanged("m3", net.ParseIP("198.18.60.3"), meta("198.18.61.3"), true)
	check("[198.18.61.2 198.18.61.3]")
	d.DiscoverDelete(ctx, node("198.18.60.2", false))
	check("[198.18.61.3]")
	d.DiscoverNew(ctx, node("198.18.60.2", false))
	check("[198.18.61.2 198.18.61.3]")
	d.memberChanged("m2", net.ParseIP("198.18.60.2"), nil, false)
	// dockerd still announces it: flooded at its data-path address.
	check("[198.18.61.2 198.18.61.3]")
	d.DiscoverDelete(ctx, node("198.18.60.2", false))
	d.memberChanged("m3", net.ParseIP("198.18.60.3"), nil, false)
	check("[]")
	d.memberChanged("m4", net.ParseIP("198.18.60.4"), []byte("not json"), true)
	check("[]")
	if got := d.Status(ctx).Members; len(got) != 0 {
		t.Fatalf("members: %v", got)
	}
}

// A membership key is 16, 24 or 32 bytes of base64; settings without a
// key, or a key of another length, are refused with what is accepted.
func TestMembershipConfigRefused(t *testing.T) {
	if _, err := ParseMembershipKey("c2hvcnQ="); err == nil || !strings.Contains(err.Error(), "accepted: 16, 24 or 32 bytes") {
		t.Fatalf("short key: %v", err)
	}
	if _, err := ParseMembershipKey("not base64!"); err == nil || !strings.Contains(err.Error(), "not base64") {
		t.Fatalf("bad base64: %v", err)
	}
	if k, err := ParseMembershipKey("AAAAAAAAAAAAAAAAAAAAAA=="); err != nil || len(k) != 16 {
		t.Fatalf("16-byte key: %v %v", k, err)
	}
	for _, mc := range []MembershipConfig{
		{Seeds: []string{"198.18.0.1"}},
		{Port: 7000},
		{Key: []byte("short")},
		{Key: bytes.Repeat([]byte{1}, 16), Seeds: []string{"nonsense"}},
	} {
		if _, err := NewDriver(Config{Scope: "global", Host: newFakeHost(), Membership: mc}); err == nil {
			t.Errorf("%+v accepted", mc)
		}
	}
	ok := MembershipConfig{Key: bytes.Repeat([]byte{1}, 16), Seeds: []string{"198.18.0.1:7000", "[fd00::1]:7000"}}
	if _, err := NewDriver(Config{Scope: "global", Host: newFakeHost(), Membership: ok}); err != nil {
		t.Fatal(err)
	}
}

// A node dockerd said left stays dropped across a restart of the plugin,
// though the Peers setting or the membership names it, until dockerd
// announces it again.
func TestDepartedKeptAcrossRestart(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	host := newFakeHost()
	cfg := Config{VTEPDevice: "eth0", Peers: []netip.Addr{netip.MustParseAddr("198.18.62.2")}}
	d := globalDriver(t, dir, host, cfg)
	d.DiscoverNew(ctx, node("198.18.62.1", true))
	d.DiscoverNew(ctx, node("198.18.62.3", false))
	d.DiscoverDelete(ctx, node("198.18.62.2", false))
	d.DiscoverDelete(ctx, node("198.18.62.3", false))
	d.store.Close()
	d = globalDriver(t, dir, host, cfg)
	d.memberChanged("m3", net.ParseIP("198.18.62.3"), []byte(`{"data":"198.18.63.3"}`), true)
	mustCreate(t, d, "a1", map[string]any{"VxlanId": "1000"})
	if got := host.peersOf("vx_a1"); got != "[]" {
		t.Fatalf("after the restart, peers %s: want none", got)
	}
	d.DiscoverNew(ctx, node("198.18.62.2", false))
	d.DiscoverNew(ctx, node("198.18.62.3", false))
	if got := host.peersOf("vx_a1"); got != "[198.18.62.2 198.18.63.3]" {
		t.Fatalf("announced again: peers %s", got)
	}
	if rep := d.Status(ctx); len(rep.Nodes) != 3 {
		t.Fatalf("status nodes: %+v", rep.Nodes)
	}
}
