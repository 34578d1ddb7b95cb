package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// The state directory is made the plugin's alone: a looser mode is
// tightened to 0700.
func TestOwnDirTightensMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ownDir(dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v %v, want 0700", fi.Mode(), err)
	}
}

// A state directory owned by another user is refused (as root: the test
// gives it to nobody).
func TestOwnDirRefusesAnotherOwner(t *testing.T) {
	testns.RequireRoot(t)
	dir := t.TempDir()
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := ownDir(dir, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("got %v", err)
	}
}

// Only a socket is removed from the -socket path: a file there is kept and
// refused.
func TestRemoveStaleSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "vxlan.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if err := removeStaleSocket(sock); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left: %v", err)
	}
	if err := removeStaleSocket(sock); err != nil {
		t.Fatalf("nothing there: %v", err)
	}
	file := filepath.Join(dir, "passwd")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeStaleSocket(file); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("got %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
		t.Fatalf("file changed: %q %v", b, err)
	}
}

// listenUnix listens on a unix socket at path, accepting and closing every
// connection (each also sent to accepted, if not nil), until the test ends.
func listenUnix(t *testing.T, path string, accepted chan<- struct{}) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
			if accepted != nil {
				accepted <- struct{}{}
			}
		}
	}()
}

// A socket that something listens on is never removed: the error names
// the socket and the process that listens (this test's).
func TestRemoveStaleSocketKeepsLiveSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "vxlan.sock")
	accepted := make(chan struct{}, 1)
	listenUnix(t, sock, accepted)
	err := removeStaleSocket(sock)
	want := fmt.Sprintf("-socket %s: in use: process %d (", sock, os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "refusing to remove it") {
		t.Fatalf("got %v, want one containing %q", err, want)
	}
	<-accepted
	// Still there, and still answering.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("the live socket is gone: %v", err)
	}
	c.Close()
	<-accepted
}
