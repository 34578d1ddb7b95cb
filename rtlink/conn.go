package rtlink

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/netfault"
	"github.com/mdlayher/netlink"
)

// Conn is a NETLINK_ROUTE connection bound to one network namespace.
//
// A Conn is safe for concurrent use: requests are serialised on the socket,
// each waits for its own answer. The kernel answers rtnetlink requests
// synchronously, so a request blocks only while the kernel holds the RTNL
// lock; ctx is checked before each request is sent. Watching for events,
// which blocks for real, is done on a socket of its own and ends when its
// context does (see [WatchNeighbors]).
type Conn struct {
	nc        *netlink.Conn
	ns        *NetNS               // the namespace the connection was dialled into; nil for the caller's
	intercept netfault.Interceptor // a test's fault injection; nil in production
	closed    atomic.Bool
}

// DialOption configures [Dial].
type DialOption func(*dialConfig) error

type dialConfig struct {
	ns        *NetNS
	ownsNS    bool
	groups    uint32
	intercept netfault.Interceptor // carried over by Clone
}

// WithNetNS binds the connection to the namespace ns. The caller keeps
// ownership of ns and may close it once Dial returns.
func WithNetNS(ns *NetNS) DialOption {
	return func(c *dialConfig) error { c.ns = ns; return nil }
}

// WithNetNSPath binds the connection to the namespace at path, or to the one
// named path under /run/netns (see [OpenNetNS]).
func WithNetNSPath(path string) DialOption {
	return func(c *dialConfig) error {
		ns, err := OpenNetNS(path)
		if err != nil {
			return err
		}
		c.ns, c.ownsNS = ns, true
		return nil
	}
}

// WithNetNSPid binds the connection to the network namespace of process pid.
func WithNetNSPid(pid int) DialOption {
	return func(c *dialConfig) error {
		ns, err := OpenNetNSPid(pid)
		if err != nil {
			return err
		}
		c.ns, c.ownsNS = ns, true
		return nil
	}
}

// Dial opens a connection in the caller's network namespace, or in the one
// an option names. The calling thread's namespace is never changed.
func Dial(opts ...DialOption) (*Conn, error) {
	var dc dialConfig
	nc, err := dial(&dc, opts)
	if err != nil {
		return nil, err
	}
	c := &Conn{nc: nc, intercept: dc.intercept}
	if c.intercept == nil && dc.ns != nil {
		c.intercept = netfault.For(dc.ns.Fd())
	}
	// The namespace is kept for what netlink cannot do, such as per-link
	// sysctls (DisableIPv6), which must be written from inside it.
	switch {
	case dc.ownsNS:
		c.ns = dc.ns
	case dc.ns != nil:
		fd, err := dupCloexec(dc.ns.Fd())
		if err != nil {
			nc.Close()
			return nil, opError("dial", dc.ns.String(), err)
		}
		c.ns = NetNSFromFd(fd)
	}
	return c, nil
}

// dial applies the options and opens the netlink connection. A namespace
// an option opened (dc.ownsNS) is the caller's to close, also on error.
func dial(dc *dialConfig, opts []DialOption) (*netlink.Conn, error) {
	if errNoRtnetlink != nil {
		return nil, opError("dial", "", errNoRtnetlink)
	}
	for _, o := range opts {
		if err := o(dc); err != nil {
			if dc.ownsNS {
				dc.ns.Close()
			}
			return nil, err
		}
	}
	cfg := &netlink.Config{Strict: true, Groups: dc.groups}
	where := ""
	if dc.ns != nil {
		cfg.NetNS = dc.ns.Fd()
		where = dc.ns.String()
	}
	nc, err := netlink.Dial(linuxabi.NETLINK_ROUTE, cfg)
	if err != nil {
		if dc.ownsNS {
			dc.ns.Close()
		}
		return nil, opError("dial", where, err)
	}
	return nc, nil
}

// newConn wraps an existing netlink connection, such as one made by nltest.
func newConn(nc *netlink.Conn) *Conn { return &Conn{nc: nc} }

// Close closes the connection. Closing twice is harmless.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	err := c.nc.Close()
	if c.ns != nil {
		err = errors.Join(err, c.ns.Close())
	}
	return err
}

// execute sends one request and returns the kernel's answers, with any error
// wrapped for op on link.
func (c *Conn) execute(
	ctx context.Context,
	op, link string,
	typ netlink.HeaderType,
	flags netlink.HeaderFlags,
	data []byte,
) ([]netlink.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, opError(op, link, err)
	}
	if c.intercept != nil {
		if err := c.intercept(netfault.Request{Op: op, Link: link, Changes: changes(typ)}); err != nil {
			return nil, opError(op, link, err)
		}
	}
	msgs, err := c.nc.Execute(netlink.Message{
		Header: netlink.Header{Type: typ, Flags: netlink.Request | flags},
		Data:   data,
	})
	if err != nil {
		return nil, requestError(op, link, err, typ, data)
	}
	return msgs, nil
}

// Flags for requests that change state: the kernel acknowledges each.
const (
	flagsCreate  = netlink.Acknowledge | netlink.Create | netlink.Excl
	flagsAppend  = netlink.Acknowledge | netlink.Create | netlink.Append
	flagsReplace = netlink.Acknowledge | netlink.Create | netlink.Replace
	flagsChange  = netlink.Acknowledge
	flagsDump    = netlink.Dump
)

// changes reports whether a request of message type typ changes the
// kernel's state: rtnetlink's RTM_GET* types only read it.
func changes(typ netlink.HeaderType) bool {
	switch typ {
	case linuxabi.RTM_GETLINK, linuxabi.RTM_GETADDR, linuxabi.RTM_GETROUTE, linuxabi.RTM_GETNEIGH, linuxabi.RTM_GETNSID, linuxabi.RTM_GETTUNNEL:
		return false
	}
	return true
}

// NetNS returns the namespace the connection was dialled into, valid
// until the connection is closed, or nil for the caller's own: what another
// netlink family's connection (nftables) needs to reach the same one.
func (c *Conn) NetNS() *NetNS { return c.ns }

// WatchNeighbors is [WatchNeighbors] in the connection's namespace, on a
// socket of its own.
func (c *Conn) WatchNeighbors(ctx context.Context, fn func(NeighEvent) error) error {
	if c.ns != nil {
		return WatchNeighbors(ctx, fn, WithNetNS(c.ns))
	}
	return WatchNeighbors(ctx, fn)
}

// Clone dials a second connection into the connection's namespace, with
// its fault injection, if a test installed one (internal/netfault).
// Requests on the two do not wait for each other: a
// request waits for the kernel's answer to the one before it on the same
// connection, and some answers (a link deletion's) take an RCU grace
// period.
func (c *Conn) Clone() (*Conn, error) {
	opts := []DialOption{func(dc *dialConfig) error { dc.intercept = c.intercept; return nil }}
	if c.ns != nil {
		opts = append(opts, WithNetNS(c.ns))
	}
	return Dial(opts...)
}

// dump sends the dump request req of type typ (an RTM_GET* type) and
// decodes each answer that carries an object (RTM_NEW*, which rtnetlink.h
// numbers two below the RTM_GET* of its family) with decode. An object
// decode does not keep is left out; a decoding error fails the dump.
func dump[T any](
	ctx context.Context,
	c *Conn,
	op, what string,
	typ netlink.HeaderType,
	req []byte,
	decode func([]byte) (v T, keep bool, err error),
) ([]T, error) {
	msgs, err := c.execute(ctx, op, what, typ, flagsDump, req)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(msgs))
	for _, m := range msgs {
		if m.Header.Type != typ-2 {
			continue
		}
		v, keep, err := decode(m.Data)
		if err != nil {
			return nil, opError(op, what, err)
		}
		if keep {
			out = append(out, v)
		}
	}
	return out, nil
}
