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
// the name is taken, whatever the existing link is; see Ensure for the
// idempotent form.
func (c *Client) Create(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l, err := c.toLink(ctx, &cfg)
	if err != nil {
		return err
	}
	_, err = c.conn.CreateLink(ctx, l)
	return err
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
		if d, ok := l.Data.(*rtlink.VXLAN); ok && d.Link != nil {
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
		err = c.Create(ctx, cfg)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, rtlink.ErrExists) {
			return false, err
		}
		// Created by someone else in between: compare with theirs.
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

// checkKind returns an ErrWrongKind error unless l is a vxlan link.
func checkKind(op string, l *rtlink.Link) error {
	if l.Kind == "vxlan" {
		return nil
	}
	kind := l.Kind
	if kind == "" {
		kind = "device without a kind (physical or loopback)"
	}
	return fmt.Errorf("vxlan: %s %s: it is a %s, not a vxlan: %w", op, l.Name, kind, ErrWrongKind)
}

// MismatchError reports that a link exists with settings other than asked.
type MismatchError struct {
	Name  string
	Diffs []Diff
}

// Diff is one setting that differs.
type Diff struct {
	Field      string
	Want, Have string
}

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
	if cfg.Device != "" {
		dev, err := c.conn.LinkByName(ctx, cfg.Device)
		if err != nil {
			return nil, fmt.Errorf("vxlan: underlay Device %q of %s: %w", cfg.Device, cfg.Name, err)
		}
		d.Link = Ptr(uint32(dev.Index))
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
		d.Ports = &rtlink.PortRange{Low: cfg.SrcPorts.Low, High: cfg.SrcPorts.High}
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
	}
	val := func(p *uint32) uint32 {
		if p == nil {
			return 0
		}
		return *p
	}
	is := func(p *bool) bool { return p != nil && *p }
	cfg.VNI = val(d.ID)
	cfg.Label = val(d.Label)
	cfg.Limit = val(d.Limit)
	cfg.LabelInherit = val(d.LabelPolicy) == 1
	cfg.Proxy, cfg.RSC, cfg.L2Miss, cfg.L3Miss = is(d.Proxy), is(d.RSC), is(d.L2Miss), is(d.L3Miss)
	cfg.CollectMetadata, cfg.VNIFilter = is(d.CollectMetadata), is(d.VNIFilter)
	cfg.UDPZeroChecksum6TX, cfg.UDPZeroChecksum6RX = is(d.UDPZeroCSum6TX), is(d.UDPZeroCSum6RX)
	cfg.RemoteChecksumTX, cfg.RemoteChecksumRX = is(d.RemCSumTX), is(d.RemCSumRX)
	cfg.MulticastRoute = is(d.MCRoute)
	if d.Port != nil {
		cfg.Port = *d.Port
	}
	if d.TTL != nil {
		cfg.TTL = *d.TTL
	}
	if d.TOS != nil {
		cfg.TOS = *d.TOS
	}
	if d.DF != nil {
		cfg.DF = DF(*d.DF)
	}
	if d.Ageing != nil {
		cfg.Ageing = Ptr(time.Duration(*d.Ageing) * time.Second)
	}
	if d.Ports != nil {
		cfg.SrcPorts = PortRange{Low: d.Ports.Low, High: d.Ports.High}
	}
	if d.ReservedBits != nil {
		cfg.ReservedBits = &HeaderBits{Flags: binary.BigEndian.Uint32(d.ReservedBits[:4]), VNI: binary.BigEndian.Uint32(d.ReservedBits[4:])}
	}
	if d.Link != nil && *d.Link != 0 {
		if name, ok := names[int(*d.Link)]; ok {
			cfg.Device = name
		} else if names == nil {
			dev, err := c.conn.LinkByIndex(ctx, int(*d.Link))
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
