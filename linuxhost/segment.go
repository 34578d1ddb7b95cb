package linuxhost

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
)

// Probe timing: a probe is sent ProbeCount times, ProbeInterval apart, and
// an answer is awaited ProbeInterval after the last. RFC 5227's defaults
// (three probes over one to two seconds) are made for a LAN of strangers;
// on a datacenter fabric an answer takes well under a millisecond, and
// the allocator probes ahead of requests, so 2 × 100 ms is enough.
const (
	ProbeCount    = 2
	ProbeInterval = 100 * time.Millisecond
)

// Guard is what a Segment defends and watches on the allocator's behalf.
type Guard struct {
	// Held returns the MAC of the interface that holds addr on this host
	// (nil when none carries it yet) and whether the host holds addr.
	// Other hosts' probes for a held address are answered.
	Held func(addr netip.Addr) (net.HardwareAddr, bool)
	// Answered is told that mac claimed addr on the segment (an ARP
	// reply or announcement, a neighbour advertisement) where addr is
	// held here: the allocator decides whether that is a conflict.
	Answered func(addr netip.Addr, mac net.HardwareAddr)
}

// Segment is this host's presence on a network's layer-2 segment for the
// address allocator (package ipam): it sends duplicate-address probes
// through one of the network's links (ARP probes as RFC 5227 describes,
// neighbour solicitations from the unspecified address as RFC 4862
// describes) and, as the allocator's guard, answers other hosts' probes
// for the addresses this host holds and reports other hosts' claims on
// them. It reads the link with packet sockets (AF_PACKET), so it needs no
// address on the link. It implements ipam.Segment.
type Segment struct {
	link  string
	mac   net.HardwareAddr
	guard Guard
	log   *slog.Logger

	arp, nd *packet.Conn

	mu      sync.Mutex
	waiters map[netip.Addr][]chan net.HardwareAddr
	wg      sync.WaitGroup
}

// OpenSegment opens the segment that the link named link reaches, in the
// calling goroutine's network namespace, guarded by g (either function may
// be nil). Close it when the link goes.
func OpenSegment(link string, g Guard, log *slog.Logger) (*Segment, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(link)
	if err != nil {
		return nil, fmt.Errorf("opening segment on %s: %w", link, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("opening segment on %s: the link has no Ethernet address", link)
	}
	s := &Segment{link: link, mac: ifi.HardwareAddr, guard: g, log: log, waiters: map[netip.Addr][]chan net.HardwareAddr{}}
	if s.arp, err = packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil); err != nil {
		return nil, fmt.Errorf("opening ARP socket on %s: %w", link, err)
	}
	filter, err := bpf.Assemble(neighbourDiscoveryFilter)
	if err != nil {
		s.arp.Close()
		return nil, fmt.Errorf("assembling the neighbour discovery filter: %w", err)
	}
	if s.nd, err = packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeIPv6), &packet.Config{Filter: filter}); err != nil {
		s.arp.Close()
		return nil, fmt.Errorf("opening IPv6 socket on %s: %w", link, err)
	}
	s.wg.Add(2)
	go s.read(s.arp, s.onARP)
	go s.read(s.nd, s.onND)
	return s, nil
}

// neighbourDiscoveryFilter keeps ICMPv6 neighbour solicitations and
// advertisements (next header 58 right after the IPv6 header, types 135
// and 136), which carry no extension header.
var neighbourDiscoveryFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 14 + 6, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 58, SkipTrue: 4},
	bpf.LoadAbsolute{Off: 14 + 40, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 135, SkipTrue: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 136, SkipTrue: 1},
	bpf.RetConstant{Val: 1 << 16},
	bpf.RetConstant{Val: 0},
}

// Identity is the MAC of the segment's link: it orders this host's
// candidates.
func (s *Segment) Identity() []byte { return slices.Clone(s.mac) }

// Link names the link the segment is reached through.
func (s *Segment) Link() string { return s.link }

// Close stops probing and guarding.
func (s *Segment) Close() error {
	err := errors.Join(s.arp.Close(), s.nd.Close())
	s.wg.Wait()
	return err
}

// Probe sends duplicate-address probes for addr and returns the MAC of
// the first other host that answered for it or probed for it at the same
// time, or nil when none did.
func (s *Segment) Probe(ctx context.Context, addr netip.Addr) (net.HardwareAddr, error) {
	addr = addr.Unmap()
	frame, dst, err := s.probeFrame(addr)
	if err != nil {
		return nil, err
	}
	heard := make(chan net.HardwareAddr, 1)
	s.mu.Lock()
	s.waiters[addr] = append(s.waiters[addr], heard)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waiters[addr] = slices.DeleteFunc(s.waiters[addr], func(c chan net.HardwareAddr) bool { return c == heard })
		if len(s.waiters[addr]) == 0 {
			delete(s.waiters, addr)
		}
		s.mu.Unlock()
	}()
	conn := s.arp
	if addr.Is6() {
		conn = s.nd
	}
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for range ProbeCount {
		if _, err := conn.WriteTo(frame, &packet.Addr{HardwareAddr: dst}); err != nil {
			return nil, fmt.Errorf("sending a probe for %s on %s: %w", addr, s.link, err)
		}
		t.Reset(ProbeInterval)
		select {
		case mac := <-heard:
			return mac, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	return nil, nil
}

// probeFrame builds the Ethernet frame of a probe for addr and its
// destination.
func (s *Segment) probeFrame(addr netip.Addr) ([]byte, net.HardwareAddr, error) {
	if addr.Is4() {
		p, err := arp.NewPacket(arp.OperationRequest, s.mac, netip.IPv4Unspecified(), ethernet.Broadcast, addr)
		if err != nil {
			return nil, nil, fmt.Errorf("ARP probe for %s: %w", addr, err)
		}
		return s.frame(ethernet.Broadcast, ethernet.EtherTypeARP, p)
	}
	if !addr.Is6() {
		return nil, nil, fmt.Errorf("probe for %q: not an IP address", addr)
	}
	dst := solicitedNode(addr)
	ns := &ndp.NeighborSolicitation{TargetAddress: addr} // no source link-layer option from ::
	b, err := ipv6Packet(ns, netip.IPv6Unspecified(), dst)
	if err != nil {
		return nil, nil, fmt.Errorf("neighbour solicitation for %s: %w", addr, err)
	}
	return s.frame(multicastMAC(dst), ethernet.EtherTypeIPv6, rawPayload(b))
}

// rawPayload marshals as itself.
type rawPayload []byte

// MarshalBinary returns the payload as it is.
func (r rawPayload) MarshalBinary() ([]byte, error) { return r, nil }

// frame wraps payload in an Ethernet frame from the segment's link.
func (s *Segment) frame(dst net.HardwareAddr, typ ethernet.EtherType, payload interface{ MarshalBinary() ([]byte, error) }) ([]byte, net.HardwareAddr, error) {
	b, err := payload.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	f := &ethernet.Frame{Destination: dst, Source: s.mac, EtherType: typ, Payload: b}
	fb, err := f.MarshalBinary()
	return fb, dst, err
}

// ipv6Packet builds an IPv6 packet of hop limit 255 (as neighbour
// discovery requires) carrying the ICMPv6 message m.
func ipv6Packet(m ndp.Message, src, dst netip.Addr) ([]byte, error) {
	body, err := ndp.MarshalMessageChecksum(m, src, dst)
	if err != nil {
		return nil, err
	}
	h := make([]byte, 40, 40+len(body))
	h[0] = 6 << 4
	binary.BigEndian.PutUint16(h[4:6], uint16(len(body)))
	h[6] = 58 // ICMPv6
	h[7] = 255
	s16, d16 := src.As16(), dst.As16()
	copy(h[8:24], s16[:])
	copy(h[24:40], d16[:])
	return append(h, body...), nil
}

// solicitedNode returns the solicited-node multicast address of addr.
func solicitedNode(addr netip.Addr) netip.Addr {
	a := addr.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]})
}

// multicastMAC returns the Ethernet multicast address of an IPv6
// multicast address.
func multicastMAC(addr netip.Addr) net.HardwareAddr {
	a := addr.As16()
	return net.HardwareAddr{0x33, 0x33, a[12], a[13], a[14], a[15]}
}

// read hands every frame the socket receives to handle until it closes.
func (s *Segment) read(c *packet.Conn, handle func(*ethernet.Frame)) {
	defer s.wg.Done()
	b := make([]byte, 1600)
	for {
		n, _, err := c.ReadFrom(b)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("reading the segment stopped", "link", s.link, "error", err)
			}
			return
		}
		var f ethernet.Frame
		if f.UnmarshalBinary(b[:n]) != nil || slices.Equal(f.Source, s.mac) {
			continue
		}
		handle(&f)
	}
}

// onARP handles an ARP packet from another host.
func (s *Segment) onARP(f *ethernet.Frame) {
	var p arp.Packet
	if p.UnmarshalBinary(f.Payload) != nil || !p.SenderIP.Is4() || !p.TargetIP.Is4() {
		return
	}
	if p.SenderIP.IsUnspecified() {
		// A probe: another host wants TargetIP.
		if p.Operation != arp.OperationRequest {
			return
		}
		s.heard(p.TargetIP, p.SenderHardwareAddr)
		if mac, held := s.held(p.TargetIP); held && !slices.Equal(mac, p.SenderHardwareAddr) {
			s.defendIPv4(p.TargetIP, mac, p.SenderHardwareAddr) // not against the holder's own probe
		}
		return
	}
	// A reply or an announcement: SenderHardwareAddr holds SenderIP.
	s.claimed(p.SenderIP, p.SenderHardwareAddr)
}

// onND handles a neighbour solicitation or advertisement from another
// host.
func (s *Segment) onND(f *ethernet.Frame) {
	if len(f.Payload) < 40 {
		return
	}
	src, _ := netip.AddrFromSlice(f.Payload[8:24])
	m, err := ndp.ParseMessage(f.Payload[40:])
	if err != nil {
		return
	}
	switch m := m.(type) {
	case *ndp.NeighborSolicitation:
		if !src.IsUnspecified() {
			return // address resolution, not duplicate-address detection
		}
		s.heard(m.TargetAddress, f.Source)
		if mac, held := s.held(m.TargetAddress); held && !slices.Equal(mac, f.Source) {
			s.defendIPv6(m.TargetAddress, mac) // not against the holder's own probe
		}
	case *ndp.NeighborAdvertisement:
		mac := net.HardwareAddr(f.Source)
		for _, o := range m.Options {
			if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
				mac = lla.Addr
			}
		}
		s.claimed(m.TargetAddress, mac)
	}
}

// claimed handles mac's claim on addr: a probe of addr ends with it, and
// the guard is told of a claim on an address held here.
func (s *Segment) claimed(addr netip.Addr, mac net.HardwareAddr) {
	s.heard(addr, mac)
	if _, held := s.held(addr); held && s.guard.Answered != nil {
		s.guard.Answered(addr, mac)
	}
}

// heard ends the probes waiting on addr with mac.
func (s *Segment) heard(addr netip.Addr, mac net.HardwareAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.waiters[addr] {
		select {
		case c <- slices.Clone(mac):
		default:
		}
	}
}

func (s *Segment) held(addr netip.Addr) (net.HardwareAddr, bool) {
	if s.guard.Held == nil {
		return nil, false
	}
	mac, ok := s.guard.Held(addr)
	if len(mac) != 6 {
		mac = s.mac
	}
	return mac, ok
}

// defendIPv4 answers an ARP probe for addr, held here by mac, to the
// prober.
func (s *Segment) defendIPv4(addr netip.Addr, mac, prober net.HardwareAddr) {
	p, err := arp.NewPacket(arp.OperationReply, mac, addr, prober, netip.IPv4Unspecified())
	if err == nil {
		var b []byte
		if b, _, err = s.frame(prober, ethernet.EtherTypeARP, p); err == nil {
			_, err = s.arp.WriteTo(b, &packet.Addr{HardwareAddr: prober})
		}
	}
	s.logDefence(addr, err)
}

// defendIPv6 answers a duplicate-address probe for addr, held here by
// mac, with a neighbour advertisement to all nodes (RFC 4862 5.4.3).
func (s *Segment) defendIPv6(addr netip.Addr, mac net.HardwareAddr) {
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: addr,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
	allNodes := netip.MustParseAddr("ff02::1")
	b, err := ipv6Packet(na, linkLocal(s.mac), allNodes)
	if err == nil {
		var fb []byte
		dst := multicastMAC(allNodes)
		if fb, _, err = s.frame(dst, ethernet.EtherTypeIPv6, rawPayload(b)); err == nil {
			_, err = s.nd.WriteTo(fb, &packet.Addr{HardwareAddr: dst})
		}
	}
	s.logDefence(addr, err)
}

func (s *Segment) logDefence(addr netip.Addr, err error) {
	if err != nil {
		s.log.Warn("answering another host's probe for an address held here", "link", s.link, "address", addr, "error", err)
		return
	}
	s.log.Debug("answered another host's probe for an address held here", "link", s.link, "address", addr)
}

// linkLocal returns the EUI-64 link-local address of mac.
func linkLocal(mac net.HardwareAddr) netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 8: mac[0] ^ 2, 9: mac[1], 10: mac[2], 11: 0xff, 12: 0xfe, 13: mac[3], 14: mac[4], 15: mac[5]})
}

// OpenSegment opens the segment of the network spec describes, through its
// SegmentLink, in the calling goroutine's network namespace, once the
// network's links exist.
func (h *Host) OpenSegment(spec *fabric.NetworkSpec, g Guard) (*Segment, error) {
	return OpenSegment(spec.SegmentLink(), g, h.reap.log)
}
