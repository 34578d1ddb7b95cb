package plugin

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// secret stands in for a file's content that must never reach dockerd.
const secret = "SECRET-do-not-leak"

// parentDir is a parent directory for a test, with a driver that reads
// parent-files from it and a server in front of that driver. The driver
// requires the files to be owned by the test's own uid: root in CI, the
// user otherwise.
type parentDir struct {
	t   *testing.T
	dir string
	d   *Driver
	srv *httptest.Server
}

func newParentDir(t *testing.T) *parentDir {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return newParentDirAt(t, dir)
}

func newParentDirAt(t *testing.T, dir string) *parentDir {
	t.Helper()
	d, err := NewDriver(Config{Scope: ScopeLocal, Host: newFakeHost(), ParentDir: dir, parentOwner: uint32(os.Getuid())})
	if err != nil {
		t.Fatal(err)
	}
	return &parentDir{t: t, dir: dir, d: d, srv: newServerFor(t, d)}
}

// write makes a file in the directory with the given mode, exactly.
func (p *parentDir) write(name, content string, mode os.FileMode) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// create asks for a parent network with -o parent-file=name through the
// handler, as dockerd would, and returns the answer. The test fails if no
// answer came within 5 seconds: a FIFO or a device must not block the call.
func (p *parentDir) create(name string) string {
	p.t.Helper()
	return postWithin(p.t, p.srv, "NetworkDriver.CreateNetwork", `{"NetworkID":"`+strings.Repeat("ab", 32)+`","Options":{"com.docker.network.generic":{"parent-file":"`+name+`"}}}`)
}

// refused checks that the answer refuses the option naming the rule and
// carries nothing of the secret.
func refused(t *testing.T, what, got, rule string) {
	t.Helper()
	if strings.Contains(got, "SECRET") || strings.Contains(got, "leak") {
		t.Errorf("%s: the answer carries the file's content: %s", what, got)
	}
	if !strings.Contains(got, `"Err":"vxlan: option parent-file`) || !strings.Contains(got, rule) {
		t.Errorf("%s: got %s, want a refusal of parent-file saying %q", what, got, rule)
	}
}

// The file forms in use before the directory rule work inside it: TOML
// with a name, a comma list or an array, and a plain name on the first
// line; by a name relative to the directory and by an absolute path
// inside it.
func TestParentFileForms(t *testing.T) {
	p := newParentDir(t)
	cases := []struct{ content, want string }{
		{"[macvlan]\nversion = \"0.1\"\nparent = \"eth1\"\n", "eth1"},
		{"[macvlan]\nparent = \"bond0, eth1,\"\n", "bond0,eth1"},
		{"[macvlan]\nparent = [\"bond0\", \"eth0.30\"]\n", "bond0,eth0.30"},
		{"eth0.30\n", "eth0.30"},
		{"\n# comment\n  eth2 \n", "eth2"},
	}
	for i, tc := range cases {
		name := "hosts/p" + string(rune('a'+i)) + ".conf"
		abs := p.write(name, tc.content, 0o644)
		for _, n := range []string{name, abs} {
			names, err := readParentFile(p.dir, uint32(os.Getuid()), n)
			if err != nil || strings.Join(names, ",") != tc.want {
				t.Errorf("%q as %s: %v %v, want %s", tc.content, n, names, err, tc.want)
			}
		}
	}
	// Through the driver: the file is read on this host, and a symbolic
	// link that stays inside the directory is followed.
	p.write("net1.toml", "[macvlan]\nparent = \"nope, eth0\"\n", 0o644)
	if err := os.Symlink("net1.toml", filepath.Join(p.dir, "current.toml")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"net1.toml", "current.toml", filepath.Join(p.dir, "net1.toml")} {
		spec, err := p.d.specFor(t.Context(), "n", map[string]string{"parent-file": n}, nil, nil, false)
		if err != nil || spec.Parent.Name != "eth0" || spec.Parent.File != n {
			t.Fatalf("%s: %+v %v", n, spec, err)
		}
	}
}

// Content that is not what a parent-file holds is refused saying where
// and what was expected, never what was found.
func TestParentFileContentErrors(t *testing.T) {
	p := newParentDir(t)
	cases := []struct{ content, says string }{
		{secret + "\n", "line 1: not a list of valid interface names"},
		{"\n\nroot:*:20228:0:99999:7:::" + secret + "\n", "line 3: not a list of valid interface names"},
		{"password = \"" + secret + "\"\n", "has no [macvlan] table"},
		{"[macvlan]\nversion = \"0.1\"\n", "key macvlan.parent is missing"},
		{"macvlan = \"" + secret + "\"\n", "macvlan is not a table"},
		{"[macvlan]\nparent = 5\n", "key macvlan.parent: want a string or a list of strings"},
		{"[macvlan]\nparent = [\"eth1\", 5]\n", "key macvlan.parent: an item of the list is not a string"},
		{"[macvlan]\nparent = \"" + secret + "\"\n", "key macvlan.parent: not a list of valid interface names"},
		{"[macvlan]\nparent = \"bad/name\"\n", "key macvlan.parent: not a list of valid interface names"},
		{"[macvlan]\nparent = \"SECRETx\"\n", "none of the 1 interface names in the file exists on this host"},
		{"[macvlan\nparent = \"" + secret + "\"\n", "line 2: not TOML"},
		{"[macvlan]\nparent = \"eth1\"\n" + secret + " = [\n", "line 3: not TOML"},
	}
	for i, tc := range cases {
		name := "c" + string(rune('a'+i)) + ".toml"
		p.write(name, tc.content, 0o644)
		refused(t, tc.content, p.create(name), tc.says)
	}
}

// Files the caller must not get the plugin to read are refused with the
// rule they break, answering at once and quoting nothing of the file.
func TestParentFileRefusals(t *testing.T) {
	p := newParentDir(t)
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(p.dir, "link-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../../../"+outside, filepath.Join(p.dir, "link-up")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/self/root"+outside, filepath.Join(p.dir, "link-proc")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(p.dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(p.dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	p.write("big", strings.Repeat(secret+"\n", MaxParentFileBytes/len(secret)+1), 0o644)
	p.write("world", secret+"\n", 0o646)
	p.write("group", secret+"\n", 0o664)
	p.write("linked", secret+"\n", 0o644)
	if err := os.Link(filepath.Join(p.dir, "linked"), filepath.Join(p.dir, "hardlink")); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, rule string }{
		{outside, "outside the parent directory " + p.dir},
		{"/dev/zero", "outside the parent directory " + p.dir},
		{"../" + filepath.Base(filepath.Dir(outside)) + "/secret", "a path with a '..' element"},
		{p.dir + "/../secret", "a path with a '..' element"},
		{"link-out", "leads outside the parent directory " + p.dir},
		{"link-up", "leads outside the parent directory " + p.dir},
		{"link-proc", "leads outside the parent directory " + p.dir},
		{"fifo", "not a regular file"},
		{"sub", "not a regular file"},
		{p.dir, "not a regular file"},
		{"missing", "does not exist in the parent directory " + p.dir},
		{"big", "larger than 65536 bytes"},
		{"world", "writable by group or others"},
		{"group", "writable by group or others"},
		{"hardlink", "has more than one hard link"},
		{"", "an empty path"},
	}
	for _, tc := range cases {
		refused(t, tc.name, p.create(tc.name), tc.rule)
	}
	if len(p.d.networks) != 0 {
		t.Fatalf("a refused network is known: %v", p.d.networks)
	}
}

// A file, or the directory, not owned by root is refused (as root: the
// test gives the file to nobody).
func TestParentFileNotOwnedByRoot(t *testing.T) {
	testns.RequireRoot(t)
	p := newParentDir(t)
	path := p.write("nobody", "[macvlan]\nparent = \"eth0\"\n"+secret+"\n", 0o644)
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	refused(t, "nobody's file", p.create("nobody"), "not owned by root")
	p.write("ok", "[macvlan]\nparent = \"eth0\"\n", 0o644)
	if err := os.Chown(p.dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	refused(t, "nobody's directory", p.create("ok"), "the parent directory "+p.dir+" must be owned by root and writable by no one else")
}

// A parent directory others may write to is refused: they could put files
// there.
func TestParentDirWritableByOthers(t *testing.T) {
	p := newParentDir(t)
	p.write("ok", "[macvlan]\nparent = \"eth0\"\n", 0o644)
	if got := p.create("ok"); got != "{}" {
		t.Fatalf("before: %s", got)
	}
	if err := os.Chmod(p.dir, 0o777); err != nil {
		t.Fatal(err)
	}
	refused(t, "world-writable directory", p.create("ok"), "must be owned by root and writable by no one else")
}

// /dev/zero inside the parent directory (an operator who chose /dev): a
// character device is refused without being read, at once.
func TestParentFileDevice(t *testing.T) {
	p := newParentDirAt(t, "/dev")
	p.d.cfg.parentOwner = 0
	rule := "not a regular file"
	if os.Getuid() != 0 {
		rule = "must be owned by root" // /dev is root's: the test's owner rule is its own uid
		p.d.cfg.parentOwner = uint32(os.Getuid())
	}
	refused(t, "/dev/zero", p.create("zero"), rule)
	refused(t, "/dev/zero", p.create("/dev/zero"), rule)
}

// Where the kernel has no openat2, each element is opened with O_NOFOLLOW:
// the rules hold, and no symbolic link at all is followed.
func TestParentFileWithoutOpenat2(t *testing.T) {
	saved := openat2
	openat2 = func(int, string, *unix.OpenHow) (int, error) { return -1, syscall.ENOSYS }
	t.Cleanup(func() { openat2 = saved })
	p := newParentDir(t)
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte(secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.write("hosts/net1.toml", "[macvlan]\nparent = \"eth0\"\n", 0o644)
	if err := os.Symlink("net1.toml", filepath.Join(p.dir, "hosts", "current.toml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hosts", filepath.Join(p.dir, "h")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(p.dir, "link-out")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(p.dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := p.create("hosts/net1.toml"); got != "{}" {
		t.Fatalf("plain file: %s", got)
	}
	refused(t, "link to a file inside", p.create("hosts/current.toml"), "a symbolic link")
	refused(t, "link to a directory inside", p.create("h/net1.toml"), "has an element that is not a directory")
	refused(t, "link outside", p.create("link-out"), "a symbolic link")
	refused(t, "fifo", p.create("fifo"), "not a regular file")
	refused(t, "..", p.create("hosts/../link-out"), "a path with a '..' element")
}

// The swarm manager checks the value too: a '..' is refused before any
// host reads anything.
func TestParentFileOptionParse(t *testing.T) {
	for _, v := range []string{"../x", "a/../../x", "/etc/docker-vxlan-plugin/../shadow", "..", "a\x00b"} {
		if _, err := ParseOptions(map[string]string{"parent-file": v}); err == nil || !strings.Contains(err.Error(), "option parent-file=") {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{"vlan30.conf", "hosts/a.toml", "/etc/docker-vxlan-plugin/a.toml", "a..b"} {
		if s, err := ParseOptions(map[string]string{"parent-file": v}); err != nil || s.Parent.File != v {
			t.Errorf("%q: %+v %v", v, s, err)
		}
	}
	if _, err := NewDriver(Config{Scope: ScopeLocal, Host: newFakeHost(), ParentDir: "relative/dir"}); err == nil || !strings.Contains(err.Error(), "parent directory \"relative/dir\": not an absolute path") {
		t.Errorf("relative -parent-dir: %v", err)
	}
}
