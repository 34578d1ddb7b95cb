package vxlan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// Errors matched with errors.Is, re-exported from package rtlink so callers
// of this package need not import it.
var (
	ErrNotFound     = rtlink.ErrNotFound
	ErrExists       = rtlink.ErrExists
	ErrWrongKind    = rtlink.ErrWrongKind
	ErrPermission   = rtlink.ErrPermission
	ErrNotSupported = rtlink.ErrNotSupported
	// ErrInvalid matches the kernel's EINVAL and every *ConfigError.
	ErrInvalid = rtlink.ErrInvalid
)

// Client manages VXLAN links in one network namespace. It is safe for
// concurrent use.
type Client struct {
	conn    *rtlink.Conn
	ownConn bool
}

// New returns a Client using conn; the caller keeps ownership of conn.
func New(conn *rtlink.Conn) *Client { return &Client{conn: conn} }

// Dial opens a Client on a connection of its own, in the caller's network
// namespace or the one an option names (rtlink.WithNetNSPath, ...).
func Dial(opts ...rtlink.DialOption) (*Client, error) {
	conn, err := rtlink.Dial(opts...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, ownConn: true}, nil
}

// Close closes the connection if Dial opened it.
func (c *Client) Close() error {
	if c.ownConn {
		return c.conn.Close()
	}
	return nil
}

// Conn returns the underlying connection, for the operations of package
// rtlink that this package does not wrap (addresses, bridges, ...).
func (c *Client) Conn() *rtlink.Conn { return c.conn }

// Create validates cfg and creates the link. It fails with ErrExists when
// the name is taken, whatever the existing link is, and with a
// *VNIConflictError (also matching ErrExists) when another vxlan link
// already holds the VNI and port; see Ensure for the idempotent form. An MTU
// above what the underlay can carry is refused with a *ConfigError naming
// the largest allowed, rather than lowered by the kernel: up front when
// Device is in this namespace, and otherwise by removing the link the kernel
// made with a lower MTU.
func (c *Client) Create(ctx context.Context, cfg Config) error {
	_, err := c.create(ctx, &cfg)
	return err
}

// create is Create, returning the link as the kernel reports it.
func (c *Client) create(ctx context.Context, cfg *Config) (*rtlink.Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l, err := c.toLink(ctx, cfg)
	if err != nil {
		return nil, err
	}
	made, err := c.conn.CreateLink(ctx, l)
	if errors.Is(err, rtlink.ErrExists) {
		return nil, c.explainExists(ctx, cfg, err)
	}
	if err != nil {
		return nil, explainNotSupported(cfg, err)
	}
	// An underlay toLink could not look at (one in another namespace) can
	// still make the kernel lower the MTU: remove the link and say so.
	if cfg.MTU != 0 && made.MTU != cfg.MTU {
		if derr := c.conn.DeleteLink(context.WithoutCancel(ctx), cfg.Name); derr != nil {
			return nil, derr
		}
		return nil, &ConfigError{
			Field:    "MTU",
			Value:    cfg.MTU,
			Accepted: fmt.Sprintf("at most %d, what the kernel lowered it to for the underlay (the link was removed again)", made.MTU),
		}
	}
	return made, nil
}

// VNIConflictError reports that the kernel refused a vxlan link because
// another vxlan link of the namespace already receives the same VNI on the
// same UDP port and address family. It matches ErrExists; Err is the
// kernel's error, with its own words ("A VXLAN device with the specified VNI
// already exists").
type VNIConflictError struct {
	// Name is the link that was to be created.
	Name string
	// VNI is the VNI the two links share.
	VNI uint32
	// Port is the UDP destination port the two links share.
	Port uint16
	// Other is the name of the vxlan link that holds them, "" if it could
	// not be found (it went away, or holds the VNI through VNI filtering).
	Other string
	// Err is the kernel's refusal, an *rtlink.OpError.
	Err error
}

// Error names both links and carries the kernel's message.
func (e *VNIConflictError) Error() string {
	other := "another vxlan link"
	if e.Other != "" {
		other = "vxlan link " + e.Other
	}
	return fmt.Sprintf("vxlan: cannot create %s: VNI %d on UDP port %d is taken by %s: %v", e.Name, e.VNI, e.Port, other, e.Err)
}

// Unwrap returns the kernel's error.
func (e *VNIConflictError) Unwrap() error { return e.Err }

// Is makes a VNIConflictError match ErrExists.
func (e *VNIConflictError) Is(target error) bool { return target == ErrExists }

// explainExists tells the two causes of EEXIST on create apart: the name is
// taken (err is returned as it is), or another vxlan holds the VNI and port
// (a *VNIConflictError naming it).
func (c *Client) explainExists(ctx context.Context, cfg *Config, err error) error {
	if other, lerr := c.conn.LinkByName(ctx, cfg.Name); lerr == nil {
		return fmt.Errorf("vxlan: create %s: the name is taken by a %s: %w", cfg.Name, rtlink.KindName(other.Kind), err)
	} else if !errors.Is(lerr, rtlink.ErrNotFound) {
		return err // cannot tell: as the kernel said
	}
	conflict := &VNIConflictError{Name: cfg.Name, VNI: cfg.VNI, Port: cfg.port(), Err: err}
	others, lerr := c.List(ctx)
	if lerr != nil {
		return conflict
	}
	for _, o := range others {
		if !o.VNIFilter && o.VNI == cfg.VNI && o.Port == cfg.port() && o.ipv6() == cfg.ipv6() {
			conflict.Other = o.Name
			break
		}
	}
	return conflict
}

// Get reads the vxlan link called name back into a Config. Every field the
// kernel reports is filled in, including defaults it chose (Port, Learning,
// Ageing, UDPChecksum, ...). A link of another kind gives ErrWrongKind.
func (c *Client) Get(ctx context.Context, name string) (Config, error) {
	l, err := c.conn.LinkByName(ctx, name)
	if err != nil {
		return Config{}, err
	}
	if err := checkKind("get", l); err != nil {
		return Config{}, err
	}
	return c.fromLink(ctx, l, nil)
}

// List returns the Config of every vxlan link in the namespace, asking the
// kernel for vxlan links only.
func (c *Client) List(ctx context.Context) ([]Config, error) {
	links, err := c.conn.Links(ctx, "vxlan")
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	for _, l := range links {
		if d, ok := l.Data.(*rtlink.VXLAN); ok && d.Link != nil && l.LinkNetNSID == nil {
			all, err := c.conn.Links(ctx, "")
			if err != nil {
				return nil, err
			}
			for _, a := range all {
				names[a.Index] = a.Name
			}
			break
		}
	}
	out := make([]Config, 0, len(links))
	for _, l := range links {
		cfg, err := c.fromLink(ctx, l, names)
		if err != nil {
			return nil, err
		}
		out = append(out, cfg)
	}
	return out, nil
}

// Ensure makes sure a vxlan link as cfg describes exists, and is up when
// cfg.Up is set. It reports whether it created the link.
//
//   - No link of that name: it is created.
//   - A vxlan link with the same settings: nothing is changed.
//   - A vxlan link with other settings: a *MismatchError listing every
//     field that differs; the link is left as it is.
//   - A link of another kind: an error matching ErrWrongKind; the link is
//     never touched.
//
// Settings are compared as Create would apply them: Port 0 means 4789, and
// fields whose zero value is a fixed kernel default (booleans, TTL, TOS,
// DF, Label, Limit, VNI) are always compared, while fields the kernel
// derives when unset (Group, Local, Device, SrcPorts, MTU, HardwareAddr,
// TxQueueLen, Alias, and nil pointers) are compared only when cfg sets them.
func (c *Client) Ensure(ctx context.Context, cfg Config) (created bool, err error) {
	if err := cfg.Validate(); err != nil {
		return false, err
	}
	l, err := c.conn.LinkByName(ctx, cfg.Name)
	if errors.Is(err, rtlink.ErrNotFound) {
		_, err = c.create(ctx, &cfg)
		if err == nil {
			return true, nil
		}
		var conflict *VNIConflictError
		if !errors.Is(err, rtlink.ErrExists) || errors.As(err, &conflict) {
			return false, err
		}
		// The name was taken by someone else in between: compare with theirs.
		l, err = c.conn.LinkByName(ctx, cfg.Name)
	}
	if err != nil {
		return false, err
	}
	if err := checkKind("ensure", l); err != nil {
		return false, err
	}
	have, err := c.fromLink(ctx, l, nil)
	if err != nil {
		return false, err
	}
	if diffs := diff(&cfg, &have); len(diffs) > 0 {
		return false, &MismatchError{Name: cfg.Name, Diffs: diffs}
	}
	if cfg.Up && !have.Up {
		return false, c.conn.SetUp(ctx, cfg.Name)
	}
	return false, nil
}

// Delete deletes the vxlan link called name. A link that does not exist is
// not an error; a link of another kind is refused with ErrWrongKind and left
// alone.
func (c *Client) Delete(ctx context.Context, name string) error {
	l, err := c.conn.LinkByName(ctx, name)
	if errors.Is(err, rtlink.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := checkKind("delete", l); err != nil {
		return err
	}
	err = c.conn.DeleteLink(ctx, name)
	if errors.Is(err, rtlink.ErrNotFound) {
		return nil
	}
	return err
}

// checkKind returns an error matching ErrWrongKind unless l is a vxlan
// link, worded by rtlink.CheckKind; op names the operation ("ensure").
func checkKind(op string, l *rtlink.Link) error {
	return rtlink.CheckKind("vxlan "+op, l, "vxlan")
}

// MismatchError reports that a link exists with settings other than asked.
type MismatchError struct {
	// Name is the link's name.
	Name string
	// Diffs lists every setting that differs.
	Diffs []Diff
}

// Diff is one setting that differs.
type Diff struct {
	// Field is the Config field, e.g. "VNI".
	Field string
	// Want is the value asked for, Have the link's, both as text.
	Want, Have string
}

// Error lists each differing field as "FIELD is HAVE, want WANT".
func (e *MismatchError) Error() string {
	s := fmt.Sprintf("vxlan: %s exists with other settings:", e.Name)
	for i, d := range e.Diffs {
		if i > 0 {
			s += ";"
		}
		s += fmt.Sprintf(" %s is %s, want %s", d.Field, d.Have, d.Want)
	}
	return s
}

// Is makes a MismatchError match ErrExists: the name is taken.
func (e *MismatchError) Is(target error) bool { return target == ErrExists }

// toLink turns cfg into the link to create, resolving Device.
func (c *Client) toLink(ctx context.Context, cfg *Config) (*rtlink.Link, error) {
	d := &rtlink.VXLAN{
		ID:               Ptr(cfg.VNI),
		Group:            cfg.Group,
		Local:            cfg.Local,
		Port:             Ptr(cfg.port()),
		GBP:              cfg.GBP,
		GPE:              cfg.GPE,
		TTLInherit:       cfg.TTLInherit,
		RemCSumNoPartial: cfg.RemoteChecksumNoPartial,
		Learning:         cfg.Learning,
		UDPCSum:          cfg.UDPChecksum,
		LocalBypass:      cfg.LocalBypass,
	}
	mtuLimit := 0 // the largest MTU the underlay allows, 0 for no limit
	switch {
	case cfg.Device != "":
		dev, err := c.conn.LinkByName(ctx, cfg.Device)
		if err != nil {
			return nil, fmt.Errorf("vxlan: underlay Device %q of %s: %w", cfg.Device, cfg.Name, err)
		}
		if cfg.DeviceIndex != 0 && cfg.DeviceIndex != dev.Index {
			return nil, &ConfigError{
				Field:    "DeviceIndex",
				Value:    cfg.DeviceIndex,
				Accepted: fmt.Sprintf("0 or %d, the index of Device %s", dev.Index, cfg.Device),
			}
		}
		d.Link = Ptr(uint32(dev.Index))
		mtuLimit = max(dev.MTU-cfg.overhead(), MinMTU)
	case cfg.DeviceIndex != 0:
		d.Link = Ptr(uint32(cfg.DeviceIndex))
		if cfg.LinkNetNSID == nil {
			dev, err := c.conn.LinkByIndex(ctx, cfg.DeviceIndex)
			if err != nil {
				return nil, fmt.Errorf("vxlan: underlay DeviceIndex %d of %s: %w", cfg.DeviceIndex, cfg.Name, err)
			}
			mtuLimit = max(dev.MTU-cfg.overhead(), MinMTU)
		}
	}
	if cfg.MTU != 0 && mtuLimit != 0 && cfg.MTU > mtuLimit {
		return nil, &ConfigError{
			Field: "MTU",
			Value: cfg.MTU,
			Accepted: fmt.Sprintf(
				"at most %d: the underlay's MTU less %d bytes of encapsulation, or 0 to derive it (the kernel would lower %d to %d)",
				mtuLimit,
				cfg.overhead(),
				cfg.MTU,
				mtuLimit,
			),
		}
	}
	setIf := func(p **bool, v bool) {
		if v {
			*p = Ptr(true)
		}
	}
	setIf(&d.Proxy, cfg.Proxy)
	setIf(&d.RSC, cfg.RSC)
	setIf(&d.L2Miss, cfg.L2Miss)
	setIf(&d.L3Miss, cfg.L3Miss)
	setIf(&d.CollectMetadata, cfg.CollectMetadata)
	setIf(&d.VNIFilter, cfg.VNIFilter)
	setIf(&d.UDPZeroCSum6TX, cfg.UDPZeroChecksum6TX)
	setIf(&d.UDPZeroCSum6RX, cfg.UDPZeroChecksum6RX)
	setIf(&d.RemCSumTX, cfg.RemoteChecksumTX)
	setIf(&d.RemCSumRX, cfg.RemoteChecksumRX)
	setIf(&d.MCRoute, cfg.MulticastRoute)
	if cfg.TTL != 0 {
		d.TTL = Ptr(cfg.TTL)
	}
	if cfg.TOS != 0 {
		d.TOS = Ptr(cfg.TOS)
	}
	if cfg.DF != DFUnset {
		d.DF = Ptr(uint8(cfg.DF))
	}
	if cfg.Label != 0 {
		d.Label = Ptr(cfg.Label)
	}
	if cfg.LabelInherit {
		d.LabelPolicy = Ptr(uint32(1))
	}
	if cfg.Limit != 0 {
		d.Limit = Ptr(cfg.Limit)
	}
	if cfg.Ageing != nil {
		d.Ageing = Ptr(uint32(*cfg.Ageing / time.Second))
	}
	if !cfg.SrcPorts.IsZero() {
		d.Ports = Ptr(cfg.SrcPorts)
	}
	if rb := cfg.ReservedBits; rb != nil {
		var b [8]byte
		binary.BigEndian.PutUint32(b[:4], rb.Flags)
		binary.BigEndian.PutUint32(b[4:], rb.VNI)
		d.ReservedBits = &b
	}
	return &rtlink.Link{
		Name:         cfg.Name,
		MTU:          cfg.MTU,
		HardwareAddr: cfg.HardwareAddr,
		TxQueueLen:   cfg.TxQueueLen,
		Alias:        cfg.Alias,
		Up:           cfg.Up,
		LinkNetNSID:  cfg.LinkNetNSID,
		Data:         d,
	}, nil
}

// fromLink decodes a vxlan link into a Config. names maps indexes to names
// for Device; when nil, the device is looked up.
func (c *Client) fromLink(ctx context.Context, l *rtlink.Link, names map[int]string) (Config, error) {
	d, ok := l.Data.(*rtlink.VXLAN)
	if !ok {
		d = &rtlink.VXLAN{}
	}
	cfg := Config{
		Name:                    l.Name,
		Group:                   d.Group,
		Local:                   d.Local,
		TTLInherit:              d.TTLInherit,
		GBP:                     d.GBP,
		GPE:                     d.GPE,
		RemoteChecksumNoPartial: d.RemCSumNoPartial,
		Learning:                d.Learning,
		UDPChecksum:             d.UDPCSum,
		LocalBypass:             d.LocalBypass,
		MTU:                     l.MTU,
		HardwareAddr:            l.HardwareAddr,
		TxQueueLen:              l.TxQueueLen,
		Alias:                   l.Alias,
		Up:                      l.Up,
		Index:                   l.Index,
		LinkNetNSID:             l.LinkNetNSID,
	}
	is := func(p *bool) bool { return derefOr(p, false) }
	cfg.VNI = derefOr(d.ID, 0)
	cfg.Label = derefOr(d.Label, 0)
	cfg.Limit = derefOr(d.Limit, 0)
	cfg.LabelInherit = derefOr(d.LabelPolicy, 0) == 1
	cfg.Port, cfg.TTL, cfg.TOS, cfg.DF = derefOr(d.Port, 0), derefOr(d.TTL, 0), derefOr(d.TOS, 0), DF(derefOr(d.DF, 0))
	cfg.Proxy, cfg.RSC, cfg.L2Miss, cfg.L3Miss = is(d.Proxy), is(d.RSC), is(d.L2Miss), is(d.L3Miss)
	cfg.CollectMetadata, cfg.VNIFilter = is(d.CollectMetadata), is(d.VNIFilter)
	cfg.UDPZeroChecksum6TX, cfg.UDPZeroChecksum6RX = is(d.UDPZeroCSum6TX), is(d.UDPZeroCSum6RX)
	cfg.RemoteChecksumTX, cfg.RemoteChecksumRX = is(d.RemCSumTX), is(d.RemCSumRX)
	cfg.MulticastRoute = is(d.MCRoute)
	if d.Ageing != nil {
		cfg.Ageing = Ptr(time.Duration(*d.Ageing) * time.Second)
	}
	if d.Ports != nil {
		cfg.SrcPorts = *d.Ports
	}
	if d.ReservedBits != nil {
		cfg.ReservedBits = &HeaderBits{Flags: binary.BigEndian.Uint32(d.ReservedBits[:4]), VNI: binary.BigEndian.Uint32(d.ReservedBits[4:])}
	}
	cfg.DeviceIndex = int(derefOr(d.Link, 0))
	// An underlay in another namespace has no name here: the same index
	// names another device, or none.
	if cfg.DeviceIndex != 0 && l.LinkNetNSID == nil {
		if name, ok := names[cfg.DeviceIndex]; ok {
			cfg.Device = name
		} else if names == nil {
			dev, err := c.conn.LinkByIndex(ctx, cfg.DeviceIndex)
			if err != nil && !errors.Is(err, rtlink.ErrNotFound) {
				return Config{}, err
			}
			if dev != nil {
				cfg.Device = dev.Name
			}
		}
	}
	return cfg, nil
}
