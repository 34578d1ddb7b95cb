package main

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// inNetNS runs fn on a thread switched into the network namespace at
// path; sockets fn opens stay in that namespace.
func inNetNS(path string, fn func() error) error {
	ns, err := rtlink.OpenNetNS(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	return ns.Do(fn)
}

const echoPort = 7

// startEcho serves UDP echo on the host's overlay address until stop.
func startEcho(h *host) (stop func(), err error) {
	var conn *net.UDPConn
	err = inNetNS(h.path(), func() error {
		var err error
		conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(h.Overlay.Addr(), echoPort)))
		return err
	})
	if err != nil {
		return nil, err
	}
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = conn.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return func() { conn.Close() }, nil
}

// probe sends a datagram from host src to dst's echo server over the
// overlay and waits for it to come back, trying a few times while the
// first packets wait for ARP.
func probe(src, dst *host) bool {
	var conn *net.UDPConn
	err := inNetNS(src.path(), func() error {
		var err error
		conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst.Overlay.Addr(), echoPort)))
		return err
	})
	if err != nil {
		return false
	}
	defer conn.Close()
	msg := []byte(src.Name + ">" + dst.Name)
	buf := make([]byte, 64)
	for try := 0; try < 6; try++ {
		if _, err := conn.Write(msg); err != nil {
			return false
		}
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if n, err := conn.Read(buf); err == nil && string(buf[:n]) == string(msg) {
			return true
		}
	}
	return false
}

// reachable probes every ordered pair of distinct hosts among hosts whose
// source or destination is in only (all pairs when only is nil), and
// returns how many answered out of how many were tried.
func reachable(hosts []*host, only map[*host]bool) (ok, total int) {
	var okCount, totalCount atomic.Int64
	var wg sync.WaitGroup
	for _, src := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, dst := range hosts {
				if src == dst || (only != nil && !only[src] && !only[dst]) {
					continue
				}
				totalCount.Add(1)
				if probe(src, dst) {
					okCount.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(okCount.Load()), int(totalCount.Load())
}
