package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// On SIGTERM with a socket passed in, the plugin finishes the call in
// flight, exits, and leaves the socket in place; a call that arrived during
// the stop waits in the socket's queue and the next process answers it.
func TestGracefulStopOnPassedSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	// The supervisor's copy of the socket (systemd's), kept across the
	// plugin's processes; the plugin serves on a listener of its own.
	held, err := ul.File()
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	ul.SetUnlinkOnClose(false)
	first, err := net.FileListener(held)
	if err != nil {
		t.Fatal(err)
	}
	ul.Close()

	started := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "slow done")
	})
	srv := &http.Server{Handler: mux}
	srv.SetKeepAlivesEnabled(false)
	log := slog.New(slog.DiscardHandler)
	stopped := make(chan error, 1)
	go func() {
		stopped <- serveUntilStopped(srv, &listener{Listener: first, activated: true}, time.Second, log)
	}()

	client := unixClient(path, 10*time.Second)
	slow := make(chan string, 1)
	go func() {
		resp, err := client.Post("http://plugin/slow", "", nil)
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slow <- string(b)
	}()
	<-started // the signal handler is installed before Serve runs
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the stop is under way: no more accepting
	during := make(chan string, 1)
	go func() {
		resp, err := client.Post("http://plugin/next", "", nil)
		if err != nil {
			during <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		during <- string(b)
	}()
	if got := <-slow; got != "slow done" {
		t.Fatalf("call in flight at SIGTERM: %q", got)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the socket passed in was removed: %v", err)
	}
	select {
	case got := <-during:
		t.Fatalf("the call made during the stop was answered by the stopping process: %q", got)
	default:
	}

	// The next process, on the same socket.
	next, err := net.FileListener(held)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "next "+r.URL.Path) })}
	go srv2.Serve(next)
	defer srv2.Shutdown(context.Background())
	if got := <-during; got != "next /next" {
		t.Fatalf("the call made during the stop: %q", got)
	}
}

// With a socket of its own the plugin removes it when it stops.
func TestGracefulStopRemovesOwnSocket(t *testing.T) {
	testns.RequireRoot(t) // the socket is given to root:root
	path := filepath.Join(t.TempDir(), "own.sock")
	l, err := listen(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if l.activated {
		t.Fatal("no socket was passed in, yet listen says activated")
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	stopped := make(chan error, 1)
	go func() { stopped <- serveUntilStopped(srv, l, time.Second, slog.New(slog.DiscardHandler)) }()
	// Wait until it serves, so that its signal handler is installed.
	for {
		resp, err := unixClient(path, time.Second).Get("http://plugin/")
		if err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("own socket left after the stop: %v", err)
	}
}
