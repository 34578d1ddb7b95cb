package rtlink

import (
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
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
	// Err is the cause: a unix.Errno from the kernel, or another error.
	Err error
	// Message is the kernel's extended acknowledgement text, when it sent one.
	Message string
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
	var errno unix.Errno
	if !errors.As(e.Err, &errno) {
		return false
	}
	return errnoIs(errno, target)
}

// errnoIs reports whether the kernel's errno means the sentinel target.
func errnoIs(errno unix.Errno, target error) bool {
	switch target {
	case ErrInvalid:
		return errno == unix.EINVAL
	case ErrNotFound:
		return errno == unix.ENODEV || errno == unix.ENOENT || errno == unix.ESRCH || errno == unix.EADDRNOTAVAIL
	case ErrExists:
		return errno == unix.EEXIST
	case ErrPermission:
		return errno == unix.EPERM || errno == unix.EACCES
	case ErrNotSupported:
		return errno == unix.EOPNOTSUPP || errno == unix.EAFNOSUPPORT || errno == unix.EPROTONOSUPPORT
	}
	return false
}

// opError wraps err for op on link. A netlink OpError's cause and extended
// acknowledgement text are carried over and the netlink type itself is
// dropped, so callers never see it.
func opError(op, link string, err error) error {
	if err == nil {
		return nil
	}
	e := &OpError{Op: op, Link: link, Err: err}
	var nerr *netlink.OpError
	if errors.As(err, &nerr) {
		e.Err = nerr.Err
		e.Message = nerr.Message
	}
	return e
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
