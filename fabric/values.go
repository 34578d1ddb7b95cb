package fabric

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// ParseNameList reads a comma-separated list of interface names, as the
// VtepDev and parent options take them; spaces and empty items (a
// trailing comma) are allowed, so that one list serves hosts whose NICs
// are named differently. Each name is checked as an interface name.
func ParseNameList(v string) ([]string, error) {
	var names []string
	for _, f := range strings.Split(v, ",") {
		f = strings.Trim(strings.TrimSpace(f), `"'`)
		if f == "" {
			continue
		}
		if err := checkIfName(f); err != nil {
			return nil, fmt.Errorf("%q is not a valid interface name", f)
		}
		names = append(names, f)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no interface name")
	}
	return names, nil
}

func parseUint(v string, bits int) (uint64, error) {
	n, err := strconv.ParseUint(v, 0, bits)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return 0, fmt.Errorf("out of range")
		}
		return 0, fmt.Errorf("not a number")
	}
	return n, nil
}

func parseRange(v string, lo, hi uint64) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("out of range")
	}
	return n, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean")
}

func parseAddr(v string) (netip.Addr, error) {
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("not an IP address")
	}
	return a.Unmap(), nil
}

func parseMAC(v string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(v)
	if err != nil {
		return nil, fmt.Errorf("not a MAC address")
	}
	if !vxlan.ValidMAC(m) {
		return nil, fmt.Errorf("not a 6-byte unicast MAC address")
	}
	return m, nil
}

func checkIfName(v string) error {
	// Less than the kernel takes: '%' (the kernel would pick a name of its
	// own) and bytes that are not printable ASCII (they garble logs and ip's
	// output) are refused too.
	if err := vxlan.ValidateName(v); err != nil || strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r > '~' || r == '%' }) >= 0 {
		return fmt.Errorf("not a valid interface name")
	}
	return nil
}

// parsePeers reads a comma-separated list of unicast addresses; empty
// items (a trailing comma) are allowed.
func parsePeers(v string) ([]netip.Addr, error) {
	var peers []netip.Addr
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		a, err := parseAddr(f)
		if err != nil {
			return nil, err
		}
		if a.IsMulticast() || a.IsUnspecified() {
			return nil, fmt.Errorf("%s is not a unicast address", a)
		}
		peers = append(peers, a)
	}
	return peers, nil
}

// parsePrefixes reads a comma-separated list of addresses (taken as /32
// or /128) and prefixes; empty items are allowed, an empty list is not.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil || p.Addr().Zone() != "" {
				return nil, fmt.Errorf("%q is not an IP prefix", f)
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := parseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or prefix", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no address or prefix")
	}
	return out, nil
}
