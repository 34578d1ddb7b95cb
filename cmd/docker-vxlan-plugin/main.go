// Command docker-vxlan-plugin is a Docker network plugin that puts
// containers straight onto a VXLAN segment spanning hosts: per network a
// vxlan link enslaved to a Linux bridge, per container a veth pair whose
// host end is a port of that bridge. No NAT: a container's address is a
// real address on the overlay.
//
// Run it as root on every Docker host; it listens on
// /run/docker/plugins/<name>.sock, so `docker network create -d vxlan`
// finds it with no further set-up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/docker/go-connections/sockets"

	"github.com/TrilliumIT/docker-vxlan-plugin/plugin"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "docker-vxlan-plugin:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("docker-vxlan-plugin", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: docker-vxlan-plugin [flags]\n\nA Docker network plugin for VXLAN fabrics. Flags:\n")
		fs.PrintDefaults()
	}
	debug := fs.Bool("d", false, "debug logging: every call with its request")
	scope := fs.String("scope", plugin.ScopeLocal, "scope reported to Docker: local (networks are made per host) or global (swarm; gateways are not put on the host)")
	vtepdev := fs.String("vtepdev", "", "VTEP device for networks whose options name none, or a comma-separated list of which the first existing wins (-o VtepDev overrides it)")
	name := fs.String("name", "vxlan", "driver name: docker network create -d NAME; also the socket's name")
	socket := fs.String("socket", "", "socket path (default /run/docker/plugins/NAME.sock)")
	stateDir := fs.String("state-dir", "/var/lib/docker-vxlan-plugin", "directory of the state store (state.db) that keeps networks and endpoints across restarts")
	cleanOrphans := fs.Bool("clean-orphans", false, "at start, delete links this plugin made for networks its state does not know (default: only report them)")
	parentDir := fs.String("parent-dir", plugin.DefaultParentDir, "directory that -o parent-file names are read from; the only place the plugin reads files named by a network's options")
	callTimeout := fs.Duration("call-timeout", plugin.DefaultCallTimeout, "how long one call from dockerd may take before it is cancelled and answered with an error")
	swarm := addSwarmFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	peers, vniRange, err := swarm.config()
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *socket == "" {
		*socket = filepath.Join("/run/docker/plugins", *name+".sock")
	}
	if *callTimeout <= 0 {
		return fmt.Errorf("-call-timeout %s: accepted: a positive duration such as 25s", *callTimeout)
	}

	conn, err := rtlink.Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	store, err := plugin.NewStore(*stateDir)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := ownDir(*stateDir, log); err != nil {
		return err
	}
	driver, err := plugin.NewDriver(plugin.Config{Name: *name, Scope: *scope, VTEPDevice: *vtepdev, Host: plugin.NewLinuxHost(conn), Logger: log, Store: store, CleanOrphans: *cleanOrphans, ParentDir: *parentDir, Peers: peers, VNIRange: vniRange})
	if err != nil {
		return err
	}
	// Before listening: dockerd may call as soon as the socket appears.
	rep, err := driver.Restore(context.Background())
	if err != nil {
		return err
	}
	log.Info("state restored", "file", store.Path(), "networks", rep.Networks, "failed", len(rep.Failed), "orphan links", len(rep.Orphans), "orphans deleted", rep.Cleaned)

	if err := os.MkdirAll(filepath.Dir(*socket), 0o755); err != nil {
		return err
	}
	if err := removeStaleSocket(*socket); err != nil {
		return err
	}
	// Owned by root:root, mode 0660: only root reaches the plugin.
	l, err := sockets.NewUnixSocket(*socket, 0)
	if err != nil {
		return err
	}
	// Every request is bounded: its headers, its body (NewHandler reads at
	// most plugin.MaxRequestBytes), the time to read it, and the time the
	// call may take; the answer may take the call's time and a little more.
	srv := &http.Server{
		Handler:           plugin.NewHandler(driver, plugin.WithCallTimeout(*callTimeout)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      *callTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("listening", "socket", *socket, "scope", *scope, "vtepdev", *vtepdev, "parent-dir", *parentDir, "call-timeout", *callTimeout)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Stop listening and remove the socket; networks and containers stay.
	log.Info("shutting down; networks and containers are left running")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if rerr := os.Remove(*socket); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// ownDir makes the state directory the plugin's alone: owned by the user it
// runs as, mode 0700 (an existing directory with a looser mode is
// tightened, and the log says so).
func ownDir(dir string, log *slog.Logger) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("state directory %s: owned by uid %d, not by the plugin's uid %d; give it to the plugin's user or name another with -state-dir", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		log.Warn("state directory mode tightened to 0700", "dir", dir, "was", fmt.Sprintf("%#o", fi.Mode().Perm()))
	}
	return nil
}

// removeStaleSocket removes a socket left at path by a plugin that was
// killed, which would make the listen fail; anything else at path is left
// alone and is an error.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("-socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("-socket %s: exists and is not a socket; refusing to remove it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
