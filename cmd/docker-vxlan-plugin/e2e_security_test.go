package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/dockerhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// What a user of `docker network create -o parent-file=...` sees through a
// real dockerd: a file outside the plugin's -parent-dir (a stand-in for a
// secret), a symbolic link out of it and a FIFO in it are refused with the
// rule they break and nothing of the file; the call answers at once; the
// parent-file forms in use before the directory rule work inside it, and a
// container on such a network reaches the underlay's other end.
func TestIntegrationDockerParentFileSecurity(t *testing.T) {
	dockerhost.Require(t)
	bin := buildPlugin(t)
	ns, peer := testns.New(t), testns.New(t)
	ul, _ := testns.Underlay(t, ns, peer, netip.MustParsePrefix("198.18.12.1/24"), netip.MustParsePrefix("198.18.12.2/24"))
	h := dockerhost.Start(t, ns)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.StartPlugin(bin, "-d", "-vtepdev", ul, "-state-dir", h.StateDir(), "-parent-dir", dir)
	h.ImportBusybox("bb")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log:\n%s", h.PluginLog())
		}
	})

	const secret = "SECRET-do-not-leak"
	outside := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(outside, []byte(secret+":*:20228:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "escape.toml")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "leak.conf"), []byte(secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, says string }{
		{outside, "remote: vxlan: option parent-file=" + outside + ": outside the parent directory " + dir + "; accepted: a file in the plugin's parent directory"},
		{"escape.toml", "remote: vxlan: option parent-file=escape.toml: leads outside the parent directory " + dir + " (through a symbolic link or '..')"},
		{"../" + filepath.Base(filepath.Dir(outside)) + "/shadow", "a path with a '..' element"},
		{"fifo", "remote: vxlan: option parent-file=fifo: not a regular file"},
		{"leak.conf", "remote: vxlan: option parent-file=leak.conf: line 1: not a list of valid interface names"},
	} {
		start := time.Now()
		out, err := h.Docker("network", "create", "-d", "vxlan", "-o", "parent-file="+tc.file, "refused")
		took := time.Since(start)
		t.Logf("parent-file=%s (%s): %v", tc.file, took.Round(time.Millisecond), err)
		if err == nil {
			t.Fatalf("parent-file=%s: created: %s", tc.file, out)
		}
		if msg := err.Error() + out; strings.Contains(msg, "SECRET") || !strings.Contains(msg, tc.says) {
			t.Errorf("parent-file=%s: docker says %q, want %q and nothing of the file", tc.file, msg, tc.says)
		}
	}
	if strings.Contains(h.PluginLog(), "SECRET") {
		t.Error("the plugin's log carries the file's content")
	}

	// The file forms in use before, inside the directory: TOML by absolute
	// path, and a name on the first line by a relative one.
	if err := os.WriteFile(filepath.Join(dir, "parent.toml"), []byte("[macvlan]\nparent = \"bond0, "+ul+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plain.conf"), []byte(ul+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{filepath.Join(dir, "parent.toml"), "plain.conf"} {
		h.MustDocker("network", "create", "-d", "vxlan", "--subnet", "198.18.12.0/24", "--gateway", "198.18.12.1", "-o", "parent-file="+file, "pf")
		h.MustDocker("run", "-d", "--name", "pc", "--net", "pf", "--ip", "198.18.12.31", "bb", "sleep", "3600")
		if out, err := h.Docker("exec", "pc", "ping", "-c", "2", "-W", "2", "198.18.12.2"); err != nil {
			t.Fatalf("parent-file=%s: ping the underlay's other end: %v\n%s", file, err, out)
		}
		h.MustDocker("rm", "-f", "pc")
		h.RemoveNetwork("pf")
	}
}
