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
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker"
	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "status" {
		os.Exit(runStatus(os.Args[2:], os.Stdout, os.Stderr))
	}
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
	scope := fs.String(
		"scope",
		fabric.ScopeLocal,
		"scope reported to Docker: local (networks are made per host) or global (swarm; gateways are not put on the host)",
	)
	vtepdev := fs.String(
		"vtepdev",
		"",
		"VTEP device for networks whose options name none, or a comma-separated list of which the first existing wins (-o VtepDev overrides it)",
	)
	name := fs.String("name", "vxlan", "driver name: docker network create -d NAME; also the socket's name")
	socket := fs.String("socket", "", "socket path (default /run/docker/plugins/NAME.sock)")
	stateDir := fs.String(
		"state-dir",
		"/var/lib/docker-vxlan-plugin",
		"directory of the state store (state.db) that keeps networks and endpoints across restarts",
	)
	cleanOrphans := fs.Bool(
		"clean-orphans",
		false,
		"at start, delete links this plugin made for networks its state does not know (default: only report them)",
	)
	parentDir := fs.String(
		"parent-dir",
		fabric.DefaultParentDir,
		"directory that -o parent-file names are read from; the only place the plugin reads files named by a network's options",
	)
	callTimeout := fs.Duration(
		"call-timeout",
		docker.DefaultCallTimeout,
		"how long one call from dockerd may take before it is cancelled and answered with an error",
	)
	showVersion := fs.Bool("version", false, "print the module version and VCS commit, then exit")
	logJSON := fs.Bool("log-json", false, "log JSON lines (one object per line) instead of text")
	swarm := addSwarmFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *showVersion {
		fmt.Println(versionText())
		return nil
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	peers, vniRange, err := swarm.config()
	if err != nil {
		return err
	}
	membership, err := swarm.membership()
	if err != nil {
		return err
	}
	log := newLogger(os.Stderr, *debug, *logJSON)
	if *socket == "" {
		*socket = filepath.Join("/run/docker/plugins", *name+".sock")
	}
	if *callTimeout <= 0 {
		return fmt.Errorf("-call-timeout %s: accepted: a positive duration such as 25s", *callTimeout)
	}
	return serve(daemonConfig{
		driver: docker.Config{Name: *name, Scope: *scope, VTEPDevice: *vtepdev, Logger: log, CleanOrphans: *cleanOrphans, ParentDir: *parentDir,
			Peers: peers, VNIRange: vniRange, Membership: membership},
		socket:      *socket,
		stateDir:    *stateDir,
		callTimeout: *callTimeout,
	}, log)
}

// daemonConfig is what the flags say the plugin serves.
type daemonConfig struct {
	driver      docker.Config // without Host and StateDir, which serve sets
	socket      string
	stateDir    string
	callTimeout time.Duration
}

// newLogger logs to w, as text or as JSON lines, at debug level with -d.
func newLogger(w io.Writer, debug, asJSON bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if debug {
		opts.Level = slog.LevelDebug
	}
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// versionText is the module version and VCS commit the binary was built
// from, as Go's build info records them: "(devel)" for a build in a
// working tree, and "commit unknown" when it was built without VCS
// stamping (-buildvcs=false, or outside a repository).
func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "docker-vxlan-plugin: no build information in this binary"
	}
	commit, modified, when := "unknown", "", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		case "vcs.time":
			when = " " + s.Value
		}
	}
	return fmt.Sprintf("docker-vxlan-plugin %s %s commit %s%s%s %s", bi.Main.Path, bi.Main.Version, commit, modified, when, bi.GoVersion)
}

// serve restores the state, then serves dockerd until SIGTERM or SIGINT.
func serve(cfg daemonConfig, log *slog.Logger) error {
	conn, err := rtlink.Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	host := linuxhost.New(conn, linuxhost.WithLogger(log))
	cfg.driver.Host, cfg.driver.StateDir = host, cfg.stateDir
	driver, err := docker.NewDriver(cfg.driver)
	if err != nil {
		return err
	}
	defer driver.Close()
	if err := ownDir(cfg.stateDir, log); err != nil {
		return err
	}
	// Before listening: dockerd may call as soon as the socket appears.
	rep, err := driver.Restore(context.Background())
	if err != nil {
		return err
	}
	log.Info(
		"state restored",
		"file",
		driver.StatePath(),
		"networks",
		rep.Networks,
		"failed",
		len(rep.Failed),
		"orphan links",
		len(rep.Orphans),
		"orphans deleted",
		rep.Cleaned,
	)

	l, err := listen(cfg.socket, log)
	if err != nil {
		return err
	}
	srv := newServer(driver, cfg.callTimeout, l.activated)
	log.Info(
		"listening",
		"socket",
		cfg.socket,
		"activated",
		l.activated,
		"scope",
		cfg.driver.Scope,
		"vtepdev",
		cfg.driver.VTEPDevice,
		"parent-dir",
		cfg.driver.ParentDir,
		"call-timeout",
		cfg.callTimeout,
	)
	err = serveUntilStopped(srv, l, cfg.callTimeout, log)
	// The links released by the last calls: deleted now, or else by the
	// next start.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if derr := host.Drain(ctx); derr != nil {
		log.Warn("released links left for the next start to delete", "error", derr)
	}
	return err
}

// newServer serves the driver's calls. Every request is bounded: its
// headers, its body (NewHandler reads at most docker.MaxRequestBytes), the
// time to read it, and the time the call may take; the answer may take the
// call's time and a little more. On a socket passed in, each connection
// carries one call: a connection kept open across a restart could be
// closed by the stopping plugin just as dockerd sends on it, where a new
// one waits in the socket's queue for the next plugin.
func newServer(driver *docker.Driver, callTimeout time.Duration, activated bool) *http.Server {
	srv := &http.Server{
		Handler:           docker.NewHandler(driver, docker.WithCallTimeout(callTimeout)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      callTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	if activated {
		srv.SetKeepAlivesEnabled(false)
	}
	return srv
}

// serveUntilStopped serves on l until SIGTERM or SIGINT, then stops
// gracefully: it stops accepting, lets the calls in flight finish (for at
// most the call timeout and 5 s more), and removes the socket if it made
// it. A socket passed in stays open in the process that passed it, so a
// call that arrives meanwhile waits there for the next plugin.
func serveUntilStopped(srv *http.Server, l *listener, callTimeout time.Duration, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return errors.Join(err, l.cleanup())
	case <-ctx.Done():
	}
	log.Info("stopping: finishing the calls in flight; networks and containers are left running")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), callTimeout+5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if err != nil {
		log.Error("calls still in flight at the end of the stop", "error", err)
	}
	return errors.Join(err, l.cleanup())
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
		return fmt.Errorf(
			"state directory %s: owned by uid %d, not by the plugin's uid %d; give it to the plugin's user or name another with -state-dir",
			dir,
			st.Uid,
			os.Geteuid(),
		)
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
