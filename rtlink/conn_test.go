package rtlink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/netfault"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// fakeConn returns a Conn whose kernel is fn, and the log of requests.
func fakeConn(t *testing.T, fn nltest.Func) (*Conn, *[]netlink.Message) {
	t.Helper()
	var seen []netlink.Message
	c := newConn(nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		seen = append(seen, reqs...)
		return fn(reqs)
	}))
	t.Cleanup(func() { c.Close() })
	return c, &seen
}

// Errors the kernel will not produce on demand in a test namespace map onto
// the sentinels and keep the errno and the names.
func TestErrnoMapping(t *testing.T) {
	cases := []struct {
		errno    unix.Errno
		sentinel error
	}{
		{unix.EPERM, ErrPermission},
		{unix.EACCES, ErrPermission},
		{unix.EOPNOTSUPP, ErrNotSupported},
		{unix.EAFNOSUPPORT, ErrNotSupported},
		{unix.ENODEV, ErrNotFound},
		{unix.ENOENT, ErrNotFound},
		{unix.EEXIST, ErrExists},
		{unix.EINVAL, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			c, _ := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
				return nltest.Error(int(tc.errno), reqs)
			})
			err := c.SetUp(context.Background(), "eth7")
			if !errors.Is(err, tc.sentinel) || !errors.Is(err, tc.errno) {
				t.Fatalf("err = %v, want %v and %v", err, tc.sentinel, tc.errno)
			}
			var op *OpError
			if !errors.As(err, &op) || op.Op != "set up" || op.Link != "eth7" {
				t.Fatalf("err = %#v, want an OpError for set up eth7", err)
			}
			for _, other := range []error{ErrPermission, ErrNotSupported, ErrNotFound, ErrExists, ErrInvalid} {
				if other != tc.sentinel && errors.Is(err, other) {
					t.Fatalf("%v also matches %v", err, other)
				}
			}
		})
	}
}

// If setting the alias fails after the link was created, the link is
// deleted again: a link is never left without its owner's mark.
func TestCreateLinkRollsBackWhenAliasFails(t *testing.T) {
	c, seen := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		if reqs[0].Header.Type == unix.RTM_NEWLINK && strings.Contains(string(reqs[0].Data), "mark") {
			return nltest.Error(int(unix.ENOMEM), reqs)
		}
		return nltest.Error(0, reqs) // plain acknowledgement
	})
	_, err := c.CreateLink(context.Background(), &Link{Name: "br9", Alias: "mark", Data: &Bridge{}})
	if !errors.Is(err, unix.ENOMEM) || !strings.Contains(err.Error(), "set alias br9") {
		t.Fatalf("err = %v", err)
	}
	var types []netlink.HeaderType
	for _, m := range *seen {
		types = append(types, m.Header.Type)
	}
	want := []netlink.HeaderType{unix.RTM_NEWLINK, unix.RTM_NEWLINK, unix.RTM_DELLINK}
	if len(types) != 3 || types[0] != want[0] || types[1] != want[1] || types[2] != want[2] {
		t.Fatalf("requests %v, want create, set alias, delete", types)
	}
}

// A reply the kernel would never send is an error naming the link, not a
// panic or a half-decoded link.
func TestMalformedReplies(t *testing.T) {
	replies := map[string][]byte{
		"short header": {1, 2, 3},
		"bad vxlan port": append(linkHeader(3, 0, 0), nltest.MustMarshalAttributes([]netlink.Attribute{
			{Type: unix.IFLA_IFNAME, Data: []byte("vx0\x00")},
			{Type: unix.IFLA_LINKINFO, Data: nltest.MustMarshalAttributes([]netlink.Attribute{
				{Type: unix.IFLA_INFO_KIND, Data: []byte("vxlan\x00")},
				{Type: unix.IFLA_INFO_DATA, Data: nltest.MustMarshalAttributes([]netlink.Attribute{
					{Type: unix.IFLA_VXLAN_PORT, Data: []byte{1, 2, 3}},
				})},
			})},
		})...),
	}
	for name, body := range replies {
		t.Run(name, func(t *testing.T) {
			c, _ := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
				return []netlink.Message{{Header: netlink.Header{Type: unix.RTM_NEWLINK, Sequence: reqs[0].Header.Sequence, PID: reqs[0].Header.PID}, Data: body}}, nil
			})
			l, err := c.LinkByName(context.Background(), "vx0")
			if err == nil || l != nil || !strings.Contains(err.Error(), "vx0") {
				t.Fatalf("LinkByName = %+v, %v", l, err)
			}
		})
	}
}

func TestNoReplyIsNotFound(t *testing.T) {
	c, _ := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		return nltest.Error(0, reqs)
	})
	if _, err := c.LinkByName(context.Background(), "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestCanceledContextSendsNothing(t *testing.T) {
	c, seen := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) {
		return nltest.Error(0, reqs)
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.SetUp(ctx, "eth0"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if len(*seen) != 0 {
		t.Fatalf("%d requests sent after cancellation", len(*seen))
	}
}

func TestCreateLinkNeedsKind(t *testing.T) {
	c, seen := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) { return nltest.Error(0, reqs) })
	if _, err := c.CreateLink(context.Background(), &Link{Name: "x"}); err == nil || len(*seen) != 0 {
		t.Fatalf("err = %v, %d requests", err, len(*seen))
	}
}

// The interceptor sees each request as the operation and interface its
// errors name, and fails it without sending it.
func TestInterceptor(t *testing.T) {
	var seen []string
	c, sent := fakeConn(t, func(reqs []netlink.Message) ([]netlink.Message, error) { return nltest.Error(0, reqs) })
	c.intercept = func(r netfault.Request) error {
		seen = append(seen, fmt.Sprint(r.Op, " ", r.Link, " ", r.Changes))
		if r.Op == "set mtu" {
			return errors.New("injected")
		}
		return nil
	}
	if err := c.SetUp(context.Background(), "eth0"); err != nil {
		t.Fatal(err)
	}
	err := c.SetMTU(context.Background(), "eth0", 1400)
	var op *OpError
	if !errors.As(err, &op) || op.Op != "set mtu" || op.Link != "eth0" || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("err = %v", err)
	}
	if len(*sent) != 1 || strings.Join(seen, ",") != "set up eth0 true,set mtu eth0 true" {
		t.Fatalf("sent %d requests, interceptor saw %v", len(*sent), seen)
	}
}
