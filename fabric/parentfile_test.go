package fabric

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"golang.org/x/sys/unix"
)

// parentDir is a parent directory for a test, whose files must be owned by
// the test's own uid (root in CI, the user otherwise).
type parentDir struct {
	t   *testing.T
	dir string
}

func newParentDir(t *testing.T) *parentDir {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &parentDir{t: t, dir: dir}
}

// write makes a file in the directory with the given mode, exactly.
func (p *parentDir) write(name, content string, mode os.FileMode) string {
	p.t.Helper()
	return testns.WriteFile(p.t, filepath.Join(p.dir, name), content, mode)
}

// create resolves a parent network with -o parent-file=name on a host
// with eth0, and returns the refusal's text, or "" when it resolved. The
// test fails if it took over 5 seconds: a FIFO or a device must not block.
func (p *parentDir) create(name string) string {
	p.t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Resolve(context.Background(), hostWith("eth0"), map[string]string{"parent-file": name},
			ResolveConfig{ID: strings.Repeat("ab", 32), Scope: ScopeLocal, ParentDir: p.dir, ParentOwner: uint32(os.Getuid())})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return err.Error()
		}
		return ""
	case <-time.After(5 * time.Second):
		p.t.Fatalf("parent-file=%s: no answer within 5 s", name)
		return ""
	}
}

// refused checks that a refusal names parent-file and the rule, and
// carries nothing of the secret.
func refused(t *testing.T, what, got, rule string) {
	t.Helper()
	if strings.Contains(got, "SECRET") || strings.Contains(got, "leak") {
		t.Errorf("%s: the refusal carries the file's content: %s", what, got)
	}
	if !strings.HasPrefix(got, "option parent-file") || !strings.Contains(got, rule) {
		t.Errorf("%s: got %q, want a refusal of parent-file saying %q", what, got, rule)
	}
}

// The file forms in use before the directory rule work inside it: TOML
// with a name, a comma list or an array, and a plain name on the first
// line; by a name relative to the directory and by an absolute path
// inside it.
func TestReadParentFileForms(t *testing.T) {
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
	if got := p.create("hosts/net1.toml"); got != "" {
		t.Fatalf("plain file: %s", got)
	}
	refused(t, "link to a file inside", p.create("hosts/current.toml"), "a symbolic link")
	refused(t, "link to a directory inside", p.create("h/net1.toml"), "has an element that is not a directory")
	refused(t, "link outside", p.create("link-out"), "a symbolic link")
	refused(t, "fifo", p.create("fifo"), "not a regular file")
	refused(t, "..", p.create("hosts/../link-out"), "a path with a '..' element")
}
