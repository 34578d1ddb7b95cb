package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// The lab: hosts are network namespaces, joined by an underlay that is a
// bridge in a namespace of its own, one veth per host. A real orchestration
// tool runs on real hosts and needs none of this file; fabric.go is the part
// to copy.

// lab owns the namespaces it made and removes them in close.
type lab struct {
	prefix string
	ipv6   bool
	made   []string // namespace names, in creation order
	ul     *rtlink.Conn
	hosts  []*host
}

// host is one lab host.
type host struct {
	Name     string           // namespace name
	Underlay netip.Addr       // address on the underlay (its VTEP address)
	EthMAC   net.HardwareAddr // MAC of its underlay interface
	Overlay  netip.Prefix     // address on the VXLAN overlay
	VXMAC    net.HardwareAddr // MAC of its vxlan link
	conn     *rtlink.Conn
}

// hostMAC is a locally administered MAC for host i, with kind telling the
// interfaces of one host apart.
func hostMAC(kind byte, i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, kind, 0, 0, byte(i >> 8), byte(i)}
}

func (h *host) path() string { return filepath.Join("/run/netns", h.Name) }

func addNetNS(name string) error {
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newLab makes the underlay namespace with its bridge. On failure it
// removes what it made and returns a nil lab: callers close a lab only
// when err is nil.
func newLab(ctx context.Context, prefix string, ipv6 bool) (*lab, error) {
	l := &lab{prefix: prefix, ipv6: ipv6}
	if err := l.makeUnderlay(ctx); err != nil {
		return nil, errors.Join(err, l.close())
	}
	return l, nil
}

// makeUnderlay makes the underlay namespace and its bridge "ul".
func (l *lab) makeUnderlay(ctx context.Context) error {
	name := l.prefix + "-ul"
	if err := addNetNS(name); err != nil {
		return err
	}
	l.made = append(l.made, name)
	conn, err := rtlink.Dial(rtlink.WithNetNSPath(name))
	if err != nil {
		return err
	}
	l.ul = conn
	_, err = conn.CreateLink(ctx, &rtlink.Link{Name: "ul", Up: true, Data: &rtlink.Bridge{}})
	return err
}

// underlayAddr is host i's VTEP address: 198.18.0.i/16 or fd00:18::i/64.
func (l *lab) underlayAddr(i int) netip.Prefix {
	if l.ipv6 {
		return netip.MustParsePrefix(fmt.Sprintf("fd00:18::%x/64", i))
	}
	return netip.MustParsePrefix(fmt.Sprintf("198.18.%d.%d/16", i/256, i%256))
}

// overlayAddr is host i's address on the overlay: 198.19.i/16.
func overlayAddr(i int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("198.19.%d.%d/16", i/256, i%256))
}

// addHost makes host i: a namespace whose "eth0" is a veth to the
// underlay bridge, carrying the host's underlay address.
func (l *lab) addHost(ctx context.Context, i int) (*host, error) {
	name := fmt.Sprintf("%s-h%d", l.prefix, i)
	if err := addNetNS(name); err != nil {
		return nil, err
	}
	l.made = append(l.made, name)
	ns, err := rtlink.OpenNetNS(name)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	br, err := l.ul.LinkByName(ctx, "ul")
	if err != nil {
		return nil, err
	}
	port := fmt.Sprintf("p%d", i)
	ethMAC := hostMAC(0, i)
	veth := &rtlink.Veth{PeerName: "eth0", PeerNetNS: ns, PeerHardwareAddr: ethMAC}
	if _, err := l.ul.CreateLink(ctx, &rtlink.Link{Name: port, MasterIndex: br.Index, Up: true, Data: veth}); err != nil {
		return nil, err
	}
	conn, err := rtlink.Dial(rtlink.WithNetNS(ns))
	if err != nil {
		return nil, err
	}
	h := &host{Name: name, Underlay: l.underlayAddr(i).Addr(), EthMAC: ethMAC, Overlay: overlayAddr(i), VXMAC: hostMAC(1, i), conn: conn}
	for _, dev := range []string{"lo", "eth0"} {
		if err := conn.SetUp(ctx, dev); err != nil {
			return nil, err
		}
	}
	eth0, err := conn.LinkByName(ctx, "eth0")
	if err != nil {
		return nil, err
	}
	if err := conn.AddAddress(ctx, eth0, l.underlayAddr(i)); err != nil {
		return nil, err
	}
	// Static underlay neighbours between the new host and every other. All
	// namespaces share the kernel's one neighbour table, whose limit
	// (gc_thresh3, 1024 by default) 50 hosts learning each other by ARP
	// would overflow; permanent entries do not count against it.
	for _, o := range l.hosts {
		if err := staticNeigh(ctx, h.conn, "eth0", o.Underlay, o.EthMAC); err != nil {
			return nil, err
		}
		if err := staticNeigh(ctx, o.conn, "eth0", h.Underlay, h.EthMAC); err != nil {
			return nil, err
		}
	}
	l.hosts = append(l.hosts, h)
	return h, nil
}

// staticNeigh adds a permanent neighbour entry ip → mac on the link dev.
func staticNeigh(ctx context.Context, c *rtlink.Conn, dev string, ip netip.Addr, mac net.HardwareAddr) error {
	l, err := c.LinkByName(ctx, dev)
	if err != nil {
		return err
	}
	fam := uint8(rtlink.FamilyIPv4)
	if ip.Is6() {
		fam = rtlink.FamilyIPv6
	}
	return c.AddNeigh(ctx, &rtlink.Neigh{Family: fam, LinkIndex: l.Index, State: rtlink.NUDPermanent, IP: ip, MAC: mac})
}

// close deletes every namespace the lab made, and with them every link.
func (l *lab) close() error {
	if l.ul != nil {
		l.ul.Close()
	}
	for _, h := range l.hosts {
		h.conn.Close()
	}
	var first error
	for i := len(l.made) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", l.made[i]).CombinedOutput(); err != nil && first == nil {
			first = fmt.Errorf("ip netns del %s: %v: %s", l.made[i], err, strings.TrimSpace(string(out)))
		}
	}
	return first
}

func requireRoot() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: it creates network namespaces and links")
	}
	return nil
}
