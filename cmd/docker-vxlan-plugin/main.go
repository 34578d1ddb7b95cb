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
	driver, err := plugin.NewDriver(plugin.Config{Name: *name, Scope: *scope, VTEPDevice: *vtepdev, Host: plugin.NewLinuxHost(conn), Logger: log, Store: store, CleanOrphans: *cleanOrphans, Peers: peers, VNIRange: vniRange})
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
	// A socket left by a plugin that was killed would make the listen fail.
	if err := os.Remove(*socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// Owned by root:root, mode 0660: only root reaches the plugin.
	l, err := sockets.NewUnixSocket(*socket, 0)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: plugin.NewHandler(driver), ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("listening", "socket", *socket, "scope", *scope, "vtepdev", *vtepdev)
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
