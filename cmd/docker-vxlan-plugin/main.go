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
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker"
	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"golang.org/x/sys/unix"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes of the daemon and of its version and help subcommands
// (status has its own: statusClean and the others).
const (
	exitOK    = 0 // stopped by SIGTERM or SIGINT, or a subcommand done
	exitError = 1 // the plugin could not start or stopped with an error
	exitUsage = 2 // the command line or environment was refused; nothing was written
)

// subcommands are the commands the daemon's binary offers besides running
// the plugin, as usage lists them.
var subcommands = []struct{ name, args, summary string }{
	{"status", "[flags]", "networks, endpoints and swarm nodes the running plugin holds, checked against the kernel"},
	{"version", "", "print the module version and VCS commit the binary was built from"},
	{"help", "[status]", "print this text, or the status command's"},
}

// run runs the command line args (without the program's name) and returns
// the exit code. A first argument that is not a flag is a subcommand; an
// unknown one, or an argument left after the daemon's flags, is refused
// before anything is done.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return runSubcommand(args, stdout, stderr)
	}
	d := newDaemonFlags(stderr)
	if err := d.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage // the flag package printed the error and the usage
	}
	if *d.version {
		fmt.Fprintln(stdout, versionText())
		return exitOK
	}
	cfg, err := d.config()
	if err != nil {
		fmt.Fprintf(stderr, "docker-vxlan-plugin: %v\nRun docker-vxlan-plugin -h for the flags and environment variables.\n", err)
		return exitUsage
	}
	if err := serve(cfg); err != nil {
		fmt.Fprintln(stderr, "docker-vxlan-plugin:", err)
		return exitError
	}
	return exitOK
}

// runSubcommand runs the subcommand args[0].
func runSubcommand(args []string, stdout, stderr io.Writer) int {
	switch cmd, rest := args[0], args[1:]; cmd {
	case "status":
		return runStatus(rest, stdout, stderr)
	case "version":
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "docker-vxlan-plugin version: unexpected argument %q; it takes none\n", rest[0])
			return exitUsage
		}
		fmt.Fprintln(stdout, versionText())
		return exitOK
	case "help":
		switch {
		case len(rest) == 0:
			newDaemonFlags(stdout).fs.Usage()
			return exitOK
		case len(rest) == 1 && rest[0] == "status":
			return runStatus([]string{"-h"}, stdout, stdout)
		}
		fmt.Fprintf(stderr, "docker-vxlan-plugin help: unknown topic %q; accepted: none, or status\n", strings.Join(rest, " "))
		return exitUsage
	default:
		msg := fmt.Sprintf("docker-vxlan-plugin: unknown command %q", cmd)
		if s := suggest(cmd); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		fmt.Fprintf(stderr, "%s; nothing was done.\n\n", msg)
		newDaemonFlags(stderr).fs.Usage()
		return exitUsage
	}
}

// suggest returns the subcommand that word is a typo of (at most two
// letters changed, added, removed or swapped), or "".
func suggest(word string) string {
	for _, c := range subcommands {
		if editDistance(word, c.name) <= 2 {
			return c.name
		}
	}
	return ""
}

// editDistance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and swaps of adjacent letters.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// daemonFlags are the daemon's flags, registered on fs.
type daemonFlags struct {
	fs                                     *flag.FlagSet
	debug, cleanOrphans, version, logJSON  *bool
	managed                                *bool
	scope, vtepdev, name, socket, stateDir *string
	parentDir                              *string
	callTimeout                            *time.Duration
	swarm                                  *swarmFlags
	metricsAddr                            *string
	vtepFilter                             *bool
}

// newDaemonFlags registers the daemon's flags on a new flag set that
// prints its errors and usage to out. Each flag has its row in settings.
func newDaemonFlags(out io.Writer) *daemonFlags {
	fs := flag.NewFlagSet("docker-vxlan-plugin", flag.ContinueOnError)
	fs.SetOutput(out)
	d := &daemonFlags{fs: fs}
	fs.Usage = func() { writeUsage(fs) }
	d.debug = fs.Bool("d", false, "debug logging: every call with its request")
	d.scope = fs.String(
		"scope",
		fabric.ScopeLocal,
		"scope reported to Docker: local (networks are made per host) or global (swarm; gateways are not put on the host)",
	)
	d.vtepdev = fs.String(
		"vtepdev",
		"",
		"VTEP device for networks whose options name none, or a comma-separated list of which the first existing wins (-o VtepDev overrides it)",
	)
	d.name = fs.String("name", "vxlan", "driver name: docker network create -d NAME; also the socket's name")
	d.socket = fs.String("socket", "", "socket path (default /run/docker/plugins/NAME.sock)")
	d.stateDir = fs.String(
		"state-dir",
		"/var/lib/docker-vxlan-plugin",
		"directory of the state store (state.db) that keeps networks and endpoints across restarts",
	)
	d.cleanOrphans = fs.Bool(
		"clean-orphans",
		false,
		"at start, delete links this plugin made for networks its state does not know (default: only report them)",
	)
	d.parentDir = fs.String(
		"parent-dir",
		fabric.DefaultParentDir,
		"directory that -o parent-file names are read from; the only place the plugin reads files named by a network's options",
	)
	d.callTimeout = fs.Duration(
		"call-timeout",
		docker.DefaultCallTimeout,
		"how long one call from dockerd may take before it is cancelled and answered with an error",
	)
	d.version = fs.Bool("version", false, "print the module version and VCS commit, then exit (as the version command does)")
	d.logJSON = fs.Bool("log-json", false, "log JSON lines (one object per line) instead of text")
	d.managed = fs.Bool(
		"managed-plugin",
		false,
		"read the settings from the managed plugin's variables (DEBUG, SCOPE, ...) instead of DVP_*; the managed plugin's entrypoint passes it",
	)
	d.vtepFilter = fs.Bool(
		"vtep-filter",
		true,
		"admit each vxlan network's VXLAN packets only from its VTEPs (nftables table inet docker_vxlan_plugin), for networks "+
			"without -o VtepFilter; false leaves them unfiltered unless -o VtepFilter=true",
	)
	d.swarm = addSwarmFlags(fs)
	d.metricsAddr = addMetricsFlag(fs)
	return d
}

// writeUsage prints the subcommands, the flags and the environment
// variables that set them.
func writeUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: docker-vxlan-plugin [flags]\n       docker-vxlan-plugin COMMAND [flags]\n\n")
	fmt.Fprintf(w, "A Docker network plugin for VXLAN fabrics. Without a command it runs the plugin (as root).\n\nCommands:\n")
	for _, c := range subcommands {
		fmt.Fprintf(w, "  %-18s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, "\nFlags:\n")
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nEnvironment variables, each read when its flag is not given (with -managed-plugin, the managed plugin's setting instead):\n")
	for _, s := range settings {
		if s.Env == "" {
			continue
		}
		managed := ""
		if s.Managed != "" {
			managed = "  (managed plugin: " + s.Managed + ")"
		}
		fmt.Fprintf(w, "  %-18s -%s%s\n", s.Env, s.Flag, managed)
	}
	fmt.Fprintf(w, "\nExit codes: 0 stopped by SIGTERM or SIGINT; 1 failed; 2 command line or environment refused, nothing done.\n")
}

// config checks the command line and the environment, and returns what
// the plugin is to serve. Everything is checked here, before anything is
// written.
func (d *daemonFlags) config() (daemonConfig, error) {
	if d.fs.NArg() > 0 {
		return daemonConfig{}, fmt.Errorf("unexpected argument %q after the flags; commands (status, version, help) come first", d.fs.Arg(0))
	}
	managed := *d.managed
	if err := applyEnv(d.fs, managed); err != nil {
		return daemonConfig{}, err
	}
	peers, vniRange, err := d.swarm.config(managed)
	if err != nil {
		return daemonConfig{}, err
	}
	membership, err := d.swarm.membership(managed)
	if err != nil {
		return daemonConfig{}, err
	}
	if *d.scope != fabric.ScopeLocal && *d.scope != fabric.ScopeGlobal {
		return daemonConfig{}, fmt.Errorf("-scope (%s) %q: accepted: local, global", envName("scope", managed), *d.scope)
	}
	if *d.name == "" || strings.ContainsAny(*d.name, "/\x00") {
		return daemonConfig{}, fmt.Errorf("-name %q: accepted: a non-empty name without a slash", *d.name)
	}
	if *d.vtepdev != "" {
		if _, err := fabric.ParseNameList(*d.vtepdev); err != nil {
			return daemonConfig{}, fmt.Errorf("-vtepdev (%s) %q: %w", envName("vtepdev", managed), *d.vtepdev, err)
		}
	}
	if _, err := fabric.CheckParentDir(*d.parentDir); err != nil {
		return daemonConfig{}, fmt.Errorf("-parent-dir: %w; accepted: an absolute path", err)
	}
	if *d.callTimeout <= 0 {
		return daemonConfig{}, fmt.Errorf("-call-timeout %s: accepted: a positive duration such as 25s", *d.callTimeout)
	}
	if err := checkMetricsAddr(*d.metricsAddr, envName("metrics-addr", managed)); err != nil {
		return daemonConfig{}, err
	}
	socket := *d.socket
	if socket == "" {
		socket = filepath.Join("/run/docker/plugins", *d.name+".sock")
	}
	log := newLogger(os.Stderr, *d.debug, *d.logJSON)
	return daemonConfig{
		driver: docker.Config{Name: *d.name, Scope: *d.scope, VTEPDevice: *d.vtepdev, Logger: log, CleanOrphans: *d.cleanOrphans,
			ParentDir: *d.parentDir, Peers: peers, VNIRange: vniRange, Membership: membership},
		socket:      socket,
		stateDir:    *d.stateDir,
		callTimeout: *d.callTimeout,
		metricsAddr: *d.metricsAddr,
		vtepFilter:  *d.vtepFilter,
		log:         log,
	}, nil
}

// daemonConfig is what the flags say the plugin serves.
type daemonConfig struct {
	driver      docker.Config // without Host and StateDir, which serve sets
	socket      string
	stateDir    string
	callTimeout time.Duration
	metricsAddr string // empty: no metrics endpoint
	vtepFilter  bool   // the VTEP filter's default
	log         *slog.Logger
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
func serve(cfg daemonConfig) error {
	log := cfg.log
	// A socket some process listens on is refused before the state store
	// is opened (whose lock the other plugin may hold), unless the socket
	// is passed in.
	if !socketPassedIn() {
		if err := removeStaleSocket(cfg.socket); err != nil {
			return err
		}
	}
	conn, err := rtlink.Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	metrics := docker.NewMetrics()
	host := linuxhost.New(conn, linuxhost.WithLogger(log), linuxhost.WithDeletionObserver(metrics.ObserveDeletion),
		linuxhost.WithVTEPFilter(cfg.vtepFilter))
	defer host.Close()
	cfg.driver.Host, cfg.driver.StateDir, cfg.driver.Metrics = host, cfg.stateDir, metrics
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

	stopMetrics, err := serveMetrics(cfg.metricsAddr, metrics.Handler(), log)
	if err != nil {
		return err
	}
	defer stopMetrics()
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
		"vtep-filter",
		cfg.vtepFilter,
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
// killed, which would make the listen fail. A socket that something
// listens on is never removed: the error names the process that made it,
// as the kernel tells (SO_PEERCRED). Anything else at path is left alone
// and is an error.
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
	conn, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		holder := socketHolder(conn.(*net.UnixConn))
		conn.Close()
		return fmt.Errorf("-socket %s: in use: %s listens on it (another docker-vxlan-plugin, or the systemd socket unit); "+
			"refusing to remove it: stop that one first, or name another socket with -socket", path, holder)
	case !errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("-socket %s: cannot tell whether something listens on it: %w; refusing to remove it", path, err)
	}
	// Connection refused: nothing listens; the socket is stale.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// socketPassedIn reports whether a supervisor passed this process its
// socket (LISTEN_PID is its pid), as listen then takes it.
func socketPassedIn() bool {
	return os.Getenv("LISTEN_FDS") != "" && os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid())
}

// socketHolder names the process at the other end of conn: the one that
// made the listening socket, as the kernel recorded it (SO_PEERCRED), with
// its command name if /proc still shows it.
func socketHolder(conn *net.UnixConn) string {
	raw, err := conn.SyscallConn()
	if err != nil {
		return "a process"
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil || cerr != nil {
		return "a process (the kernel did not tell which)"
	}
	who := fmt.Sprintf("process %d", cred.Pid)
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cred.Pid)); err == nil {
		who += " (" + strings.TrimSpace(string(comm)) + ")"
	}
	return fmt.Sprintf("%s, uid %d,", who, cred.Uid)
}
