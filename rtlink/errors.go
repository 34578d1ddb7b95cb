package rtlink

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/linuxabi"
	"github.com/mdlayher/netlink"
)

// Sentinel errors matched with errors.Is against any error of this package.
var (
	// ErrNotFound reports that the link, address, route or entry does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists reports that the object to create already exists.
	ErrExists = errors.New("already exists")
	// ErrPermission reports that the caller lacks CAP_NET_ADMIN in the namespace.
	ErrPermission = errors.New("permission denied")
	// ErrNotSupported reports that the running kernel lacks the feature, for
	// example a link kind whose driver is not built (802.1Q vlan, dummy).
	ErrNotSupported = errors.New("not supported by this kernel")
	// ErrWrongKind reports that a link exists under the name but is of another
	// kind than the caller expects.
	ErrWrongKind = errors.New("link of another kind")
	// ErrInvalid reports that the kernel refused a request as invalid
	// (EINVAL), or that this package refused a value before sending it.
	ErrInvalid = errors.New("invalid argument")
)

// OpError is the error returned by every operation of this package.
type OpError struct {
	// Op is the operation, such as "create link" or "append fdb".
	Op string
	// Link names the interface the operation was about, when there is one.
	Link string
	// Err is the cause: a syscall.Errno (unix.Errno) from the kernel, or another error.
	Err error
	// Message is the kernel's extended acknowledgement text, when it sent one.
	Message string
	// Attr, when the kernel pointed at the attribute it refused (the
	// extended acknowledgement's NLMSGERR_ATTR_OFFS), is that attribute's
	// type path in the request: the type of the top-level attribute, then
	// of each nested one down to it. A vxlan setting is
	// [IFLA_LINKINFO, IFLA_INFO_DATA, IFLA_VXLAN_...]. The NLA_F_NESTED and
	// NLA_F_NET_BYTEORDER bits are cleared.
	Attr []uint16
}

// Error returns "rtlink: OP LINK: CAUSE (kernel: MESSAGE)".
func (e *OpError) Error() string {
	s := "rtlink: " + e.Op
	if e.Link != "" {
		s += " " + e.Link
	}
	s += ": " + e.Err.Error()
	if e.Message != "" {
		s += " (kernel: " + e.Message + ")"
	}
	return s
}

// Unwrap returns the cause, so errors.Is(err, unix.EEXIST) works.
func (e *OpError) Unwrap() error { return e.Err }

// Is maps the kernel's errno onto the package's sentinel errors.
func (e *OpError) Is(target error) bool {
	var errno linuxabi.Errno
	if !errors.As(e.Err, &errno) {
		return false
	}
	return errnoIs(errno, target)
}

// errnoIs reports whether the kernel's errno means the sentinel target.
func errnoIs(errno linuxabi.Errno, target error) bool {
	switch target {
	case ErrInvalid:
		return errno == linuxabi.EINVAL
	case ErrNotFound:
		return errno == linuxabi.ENODEV || errno == linuxabi.ENOENT || errno == linuxabi.ESRCH || errno == linuxabi.EADDRNOTAVAIL
	case ErrExists:
		return errno == linuxabi.EEXIST
	case ErrPermission:
		return errno == linuxabi.EPERM || errno == linuxabi.EACCES
	case ErrNotSupported:
		return errno == linuxabi.EOPNOTSUPP || errno == linuxabi.EAFNOSUPPORT || errno == linuxabi.EPROTONOSUPPORT
	}
	return false
}

// opError wraps err for op on link. A netlink OpError's cause and extended
// acknowledgement text are carried over and the netlink type itself is
// dropped, so callers never see it.
func opError(op, link string, err error) error {
	return requestError(op, link, err, 0, nil)
}

// requestError is opError for an error of the request whose message type
// is typ and whose body is req: an attribute the kernel pointed at is
// found in req and named in Attr.
func requestError(op, link string, err error, typ netlink.HeaderType, req []byte) error {
	if err == nil {
		return nil
	}
	e := &OpError{Op: op, Link: link, Err: err}
	var nerr *netlink.OpError
	if errors.As(err, &nerr) {
		e.Err = nerr.Err
		e.Message = nerr.Message
		if hdr, ok := fixedHeaderLen(typ); ok && nerr.Offset >= nlmsgHeaderLen+hdr && len(req) >= hdr {
			e.Attr = attrPath(req[hdr:], nerr.Offset-nlmsgHeaderLen-hdr)
		}
	}
	return e
}

// nlmsgHeaderLen is the size of struct nlmsghdr, which the kernel's
// attribute offsets count from.
const nlmsgHeaderLen = 16

// fixedHeaderLen is the size of the family header (struct ifinfomsg and
// the like) that comes before the attributes of a request of type typ.
func fixedHeaderLen(typ netlink.HeaderType) (int, bool) {
	switch typ {
	case linuxabi.RTM_NEWLINK, linuxabi.RTM_SETLINK, linuxabi.RTM_DELLINK, linuxabi.RTM_GETLINK:
		return linuxabi.SizeofIfInfomsg, true
	case linuxabi.RTM_NEWADDR, linuxabi.RTM_DELADDR:
		return linuxabi.SizeofIfAddrmsg, true
	case linuxabi.RTM_NEWROUTE, linuxabi.RTM_DELROUTE:
		return linuxabi.SizeofRtMsg, true
	case linuxabi.RTM_NEWNEIGH, linuxabi.RTM_DELNEIGH:
		return linuxabi.SizeofNdMsg, true
	}
	return 0, false
}

// attrPath returns the type path of the attribute that starts at offset
// off of the attributes b, descending into the attribute that holds off,
// or nil when no attribute starts there.
func attrPath(b []byte, off int) []uint16 {
	for p := 0; p+linuxabi.SizeofNlAttr <= len(b); {
		l := int(binary.NativeEndian.Uint16(b[p:]))
		typ := binary.NativeEndian.Uint16(b[p+2:]) &^ (linuxabi.NLA_F_NESTED | linuxabi.NLA_F_NET_BYTEORDER)
		if l < linuxabi.SizeofNlAttr || p+l > len(b) {
			return nil
		}
		switch {
		case off == p:
			return []uint16{typ}
		case off > p && off < p+l:
			if sub := attrPath(b[p+linuxabi.SizeofNlAttr:p+l], off-p-linuxabi.SizeofNlAttr); sub != nil {
				return append([]uint16{typ}, sub...)
			}
			return nil
		}
		p += (l + linuxabi.NLA_ALIGNTO - 1) &^ (linuxabi.NLA_ALIGNTO - 1)
	}
	return nil
}

// KindName words a link kind for people: the kind itself, or for links that
// report none "device without a kind (physical or loopback)".
func KindName(kind string) string {
	if kind == "" {
		return "device without a kind (physical or loopback)"
	}
	return kind
}

// CheckKind returns nil when l is of kind want, and otherwise an *OpError
// for op that matches ErrWrongKind and says what l is, for example
// "rtlink: ensure eth0: it is a device without a kind (physical or
// loopback), not a vxlan". It is the one wording of a wrong kind in this
// module.
func CheckKind(op string, l *Link, want string) error {
	if l.Kind == want {
		return nil
	}
	return &OpError{Op: op, Link: l.Name, Err: fmt.Errorf("it is a %s, not a %s: %w", KindName(l.Kind), want, ErrWrongKind)}
}

// errorf builds an OpError whose cause is a formatted message.
func errorf(op, link, format string, args ...any) error {
	return &OpError{Op: op, Link: link, Err: fmt.Errorf(format, args...)}
}
