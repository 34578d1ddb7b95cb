package vxlan

import (
	"context"
	"fmt"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// Fields the kernel changes on a live vxlan link, in place (the link keeps
// its index, its FDB and its place under a bridge). Every other setting is
// fixed at creation: the kernel refuses to change VNI, Port, SrcPorts,
// Limit, UDPChecksum, TTLInherit, Proxy, RSC, L2Miss, L3Miss,
// CollectMetadata, VNIFilter, UDPZeroChecksum6TX/RX, remote checksum
// offload, GBP and GPE with "cannot change ..." (EOPNOTSUPP), as
// TestIntegrationChangelinkRefuses shows on Linux 6.18.
var changeable = map[string]bool{
	// IFLA_VXLAN_* attributes vxlan_changelink takes. Group and Local keep
	// their address family: the kernel refuses a switch of family.
	"Group": true, "Local": true, "Device": true, "DeviceIndex": true, "TTL": true, "TOS": true, "DF": true,
	"Label": true, "LabelInherit": true, "Learning": true, "Ageing": true, "LocalBypass": true,
}

// linkFields are the link attributes Update sets, each by its own request.
var linkFields = map[string]bool{"MTU": true, "HardwareAddr": true, "TxQueueLen": true, "Alias": true}

// UpdateError reports settings that differ from the live link's but that
// the kernel cannot change without deleting and creating the link again.
// It matches ErrNotSupported. Nothing was changed.
type UpdateError struct {
	// Name is the link's name.
	Name string
	// Diffs lists the settings that cannot change in place.
	Diffs []Diff
}

// Error names each setting, with the link's value and the one asked for.
func (e *UpdateError) Error() string {
	parts := make([]string, len(e.Diffs))
	for i, d := range e.Diffs {
		parts[i] = fmt.Sprintf("%s (is %s, want %s)", d.Field, d.Have, d.Want)
	}
	return fmt.Sprintf("vxlan: update %s: the kernel cannot change %s on a live link; delete and create it instead", e.Name, strings.Join(parts, ", "))
}

// Is makes an UpdateError match ErrNotSupported.
func (e *UpdateError) Is(target error) bool { return target == ErrNotSupported }

// Update changes the live vxlan link cfg.Name to the settings of cfg, in
// place, and returns what it changed. Settings are compared as Ensure
// compares them. The kernel changes Group and Local (within their address
// family), Device, TTL, TOS, DF, Label, LabelInherit, Learning, Ageing and
// LocalBypass with one changelink request, and MTU, HardwareAddr,
// TxQueueLen and Alias with one request each; when any other setting
// differs, Update changes nothing and returns an *UpdateError listing them.
// A cfg.Up link is brought up. A missing link gives ErrNotFound, a link of
// another kind ErrWrongKind. The requests are not one transaction: when a
// later one fails, the changes of the earlier ones stay, and Update can be
// called again.
func (c *Client) Update(ctx context.Context, cfg Config) ([]Diff, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l, err := c.conn.LinkByName(ctx, cfg.Name)
	if err != nil {
		return nil, err
	}
	if err := checkKind("update", l); err != nil {
		return nil, err
	}
	have, err := c.fromLink(ctx, l, nil)
	if err != nil {
		return nil, err
	}
	diffs := diff(&cfg, &have)
	var fixed []Diff
	for _, d := range diffs {
		if !changeable[d.Field] && !linkFields[d.Field] {
			fixed = append(fixed, d)
		}
	}
	if len(fixed) > 0 {
		return nil, &UpdateError{Name: cfg.Name, Diffs: fixed}
	}
	want, err := c.toLink(ctx, &cfg) // resolves Device and checks the MTU
	if err != nil {
		return nil, err
	}
	if err := c.apply(ctx, l, want, diffs); err != nil {
		return nil, err
	}
	if cfg.Up && !have.Up {
		if err := c.conn.SetUp(ctx, cfg.Name); err != nil {
			return nil, err
		}
	}
	return diffs, nil
}

// apply sends the changes listed in diffs, taking the new values from want.
func (c *Client) apply(ctx context.Context, l *rtlink.Link, want *rtlink.Link, diffs []Diff) error {
	wd := want.Data.(*rtlink.VXLAN)
	var data rtlink.VXLAN
	send := false
	var link []func() error
	for _, d := range diffs {
		send = send || changeable[d.Field]
		switch d.Field {
		case "Group":
			data.Group = wd.Group
		case "Local":
			data.Local = wd.Local
		case "Device", "DeviceIndex":
			data.Link = wd.Link
		case "TTL":
			data.TTL = Ptr(derefOr(wd.TTL, 0))
		case "TOS":
			data.TOS = Ptr(derefOr(wd.TOS, 0))
		case "DF":
			data.DF = Ptr(derefOr(wd.DF, 0))
		case "Label":
			data.Label = Ptr(derefOr(wd.Label, 0))
		case "LabelInherit":
			data.LabelPolicy = Ptr(derefOr(wd.LabelPolicy, 0))
		case "Learning":
			data.Learning = wd.Learning
		case "Ageing":
			data.Ageing = wd.Ageing
		case "LocalBypass":
			data.LocalBypass = wd.LocalBypass
		case "MTU":
			link = append(link, func() error { return c.conn.SetMTU(ctx, l.Name, want.MTU) })
		case "HardwareAddr":
			link = append(link, func() error { return c.conn.SetHardwareAddr(ctx, l.Name, want.HardwareAddr) })
		case "TxQueueLen":
			link = append(link, func() error { return c.conn.SetTxQueueLen(ctx, l.Name, want.TxQueueLen) })
		case "Alias":
			link = append(link, func() error { return c.conn.SetAlias(ctx, l.Name, want.Alias) })
		}
	}
	if send {
		if err := c.conn.ChangeLink(ctx, l.Index, &data); err != nil {
			return fmt.Errorf("vxlan: update %s: %w", l.Name, err)
		}
	}
	for _, fn := range link {
		if err := fn(); err != nil {
			return fmt.Errorf("vxlan: update %s: %w", l.Name, err)
		}
	}
	return nil
}

// derefOr returns *p, or def when p is nil: the value of an optional
// attribute, or its zero.
func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
