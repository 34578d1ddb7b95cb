// Package vxlanpkt builds VXLAN packets by hand, as an attacker on the
// underlay would, and sends them over a plain UDP socket from a test's
// namespace: the tests of the VTEP filter use it to knock on a host's VXLAN
// port without a vxlan link of their own.
package vxlanpkt

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// ARPRequest is an Ethernet frame, broadcast, carrying an ARP request
// "who has target? tell sender", sender being at srcMAC.
func ARPRequest(srcMAC net.HardwareAddr, sender, target netip.Addr) []byte {
	f := make([]byte, 0, 42)
	f = append(f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff) // destination: broadcast
	f = append(f, srcMAC...)
	f = append(f, 0x08, 0x06)             // EtherType ARP
	f = append(f, 0x00, 0x01, 0x08, 0x00) // Ethernet, IPv4
	f = append(f, 6, 4, 0x00, 0x01)       // address lengths, request
	f = append(f, srcMAC...)
	s4, t4 := sender.As4(), target.As4()
	f = append(f, s4[:]...)
	f = append(f, 0, 0, 0, 0, 0, 0)
	f = append(f, t4[:]...)
	return f
}

// Encap puts the VXLAN header (RFC 7348: the I flag, the VNI) before an
// Ethernet frame: the payload of the UDP packet.
func Encap(vni uint32, frame []byte) []byte {
	h := make([]byte, 8, 8+len(frame))
	h[0] = 0x08 // I: the VNI is valid
	binary.BigEndian.PutUint32(h[4:], vni<<8)
	return append(h, frame...)
}

// Send sends payload count times over UDP from src (any port) to dst,
// from inside ns.
func Send(ns *testns.NS, src netip.Addr, dst netip.AddrPort, payload []byte, count int) error {
	return ns.Do(func() error {
		// Unconnected: an ICMP port unreachable that a packet the host
		// admitted but had no socket for draws fails no later send.
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		if err != nil {
			return fmt.Errorf("vxlanpkt: socket on %s in %s: %w", src, ns.Name, err)
		}
		defer c.Close()
		for range count {
			if _, err := c.WriteToUDPAddrPort(payload, dst); err != nil {
				return fmt.Errorf("vxlanpkt: send to %s from %s in %s: %w", dst, src, ns.Name, err)
			}
		}
		return nil
	})
}
