package vxlan

import (
	"errors"
	"fmt"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// FeatureError reports that the kernel refused a link because it does not
// offer a setting the Config asks for: it answered EOPNOTSUPP. It matches
// ErrNotSupported; Err is the kernel's error, whose text carries the
// kernel's own words ("remcsum nopartial is not offered").
type FeatureError struct {
	// Name is the link that was to be created or changed.
	Name string
	// Fields names the Config field the kernel refused, when it pointed at
	// its attribute; otherwise every field set that some kernels leave out
	// (see optionalFeatures), one of which it refused.
	Fields []string
	// Err is the kernel's error.
	Err error
}

// Error returns "vxlan: NAME: this kernel does not offer FIELD: KERNEL'S
// ERROR", or names every candidate field when several were set.
func (e *FeatureError) Error() string {
	what := e.Fields[0]
	if len(e.Fields) > 1 {
		what = "one of " + strings.Join(e.Fields, ", ")
	}
	return fmt.Sprintf("vxlan: %s: this kernel does not offer %s: %v", e.Name, what, e.Err)
}

// Unwrap returns the kernel's error.
func (e *FeatureError) Unwrap() error { return e.Err }

// Is makes a FeatureError match ErrNotSupported.
func (e *FeatureError) Is(target error) bool { return target == ErrNotSupported }

// optionalFeatures lists the settings of c that a kernel may not offer
// (built without them, or a distribution's kernel that refuses them), in
// the order of Config.
func (c *Config) optionalFeatures() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"VNIFilter", c.VNIFilter},
		{"RemoteChecksumTX", c.RemoteChecksumTX},
		{"RemoteChecksumRX", c.RemoteChecksumRX},
		{"RemoteChecksumNoPartial", c.RemoteChecksumNoPartial},
		{"GPE", c.GPE},
		{"LocalBypass", c.LocalBypass != nil},
		{"MulticastRoute", c.MulticastRoute},
		{"ReservedBits", c.ReservedBits != nil},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// explainNotSupported turns the kernel's EOPNOTSUPP for a link of cfg
// into a *FeatureError naming the setting it refused: the one whose
// attribute the kernel pointed at, or else the settings it may lack.
// Other errors, and a refusal that names no setting of cfg, are returned
// as they are.
func explainNotSupported(cfg *Config, err error) error {
	if !errors.Is(err, ErrNotSupported) {
		return err
	}
	var oe *rtlink.OpError
	if errors.As(err, &oe) && len(oe.Attr) == 3 && oe.Attr[0] == linuxabi.IFLA_LINKINFO && oe.Attr[1] == linuxabi.IFLA_INFO_DATA {
		if f, ok := fieldOfAttr[oe.Attr[2]]; ok {
			return &FeatureError{Name: cfg.Name, Fields: []string{f}, Err: err}
		}
	}
	fields := cfg.optionalFeatures()
	if len(fields) == 0 {
		return err
	}
	return &FeatureError{Name: cfg.Name, Fields: fields, Err: err}
}

// fieldOfAttr names the Config field that sets each IFLA_VXLAN attribute.
var fieldOfAttr = map[uint16]string{
	linuxabi.IFLA_VXLAN_ID: "VNI", linuxabi.IFLA_VXLAN_GROUP: "Group", linuxabi.IFLA_VXLAN_GROUP6: "Group",
	linuxabi.IFLA_VXLAN_LINK: "Device", linuxabi.IFLA_VXLAN_LOCAL: "Local", linuxabi.IFLA_VXLAN_LOCAL6: "Local",
	linuxabi.IFLA_VXLAN_TTL: "TTL", linuxabi.IFLA_VXLAN_TOS: "TOS", linuxabi.IFLA_VXLAN_LEARNING: "Learning",
	linuxabi.IFLA_VXLAN_AGEING: "Ageing", linuxabi.IFLA_VXLAN_LIMIT: "Limit", linuxabi.IFLA_VXLAN_PORT_RANGE: "SrcPorts",
	linuxabi.IFLA_VXLAN_PROXY: "Proxy", linuxabi.IFLA_VXLAN_RSC: "RSC", linuxabi.IFLA_VXLAN_L2MISS: "L2Miss",
	linuxabi.IFLA_VXLAN_L3MISS: "L3Miss", linuxabi.IFLA_VXLAN_PORT: "Port", linuxabi.IFLA_VXLAN_UDP_CSUM: "UDPChecksum",
	linuxabi.IFLA_VXLAN_UDP_ZERO_CSUM6_TX: "UDPZeroChecksum6TX", linuxabi.IFLA_VXLAN_UDP_ZERO_CSUM6_RX: "UDPZeroChecksum6RX",
	linuxabi.IFLA_VXLAN_REMCSUM_TX: "RemoteChecksumTX", linuxabi.IFLA_VXLAN_REMCSUM_RX: "RemoteChecksumRX",
	linuxabi.IFLA_VXLAN_GBP: "GBP", linuxabi.IFLA_VXLAN_REMCSUM_NOPARTIAL: "RemoteChecksumNoPartial",
	linuxabi.IFLA_VXLAN_COLLECT_METADATA: "CollectMetadata", linuxabi.IFLA_VXLAN_LABEL: "Label", linuxabi.IFLA_VXLAN_GPE: "GPE",
	linuxabi.IFLA_VXLAN_TTL_INHERIT: "TTLInherit", linuxabi.IFLA_VXLAN_DF: "DF", linuxabi.IFLA_VXLAN_VNIFILTER: "VNIFilter",
	linuxabi.IFLA_VXLAN_LOCALBYPASS: "LocalBypass", linuxabi.IFLA_VXLAN_LABEL_POLICY: "LabelInherit",
	0x21: "ReservedBits",   // IFLA_VXLAN_RESERVED_BITS, Linux 6.14
	0x22: "MulticastRoute", // IFLA_VXLAN_MC_ROUTE, Linux 6.15
}
