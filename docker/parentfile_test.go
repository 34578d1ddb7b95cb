package docker

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
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
	d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: newFakeHost(), ParentDir: dir, parentOwner: uint32(os.Getuid())})
	if err != nil {
		t.Fatal(err)
	}
	return &parentDir{t: t, dir: dir, d: d, srv: newServerFor(t, d)}
}

// write makes a file in the directory with the given mode, exactly.
func (p *parentDir) write(name, content string, mode os.FileMode) string {
	p.t.Helper()
	return testns.WriteFile(p.t, filepath.Join(p.dir, name), content, mode)
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

// Through the driver, a parent-file is read on this host, by a name
// relative to the parent directory and by an absolute path inside it, and
// a symbolic link that stays inside the directory is followed. (The file
// forms are package fabric's tests.)
func TestParentFileForms(t *testing.T) {
	p := newParentDir(t)
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
	p.write("big", strings.Repeat(secret+"\n", fabric.MaxParentFileBytes/len(secret)+1), 0o644)
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

// The swarm manager checks the value too: a '..' is refused before any
// host reads anything.
func TestParentFileOptionParse(t *testing.T) {
	for _, v := range []string{"../x", "a/../../x", "/etc/docker-vxlan-plugin/../shadow", "..", "a\x00b"} {
		if _, err := fabric.ParseOptions(map[string]string{"parent-file": v}); err == nil || !strings.Contains(err.Error(), "option parent-file=") {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{"vlan30.conf", "hosts/a.toml", "/etc/docker-vxlan-plugin/a.toml", "a..b"} {
		if s, err := fabric.ParseOptions(map[string]string{"parent-file": v}); err != nil || s.Parent.File != v {
			t.Errorf("%q: %+v %v", v, s, err)
		}
	}
	if _, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: newFakeHost(), ParentDir: "relative/dir"}); err == nil || !strings.Contains(err.Error(), "parent directory \"relative/dir\": not an absolute path") {
		t.Errorf("relative -parent-dir: %v", err)
	}
}
