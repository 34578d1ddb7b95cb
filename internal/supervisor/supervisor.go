// Package supervisor runs a program the way systemd runs a socket-activated
// service, for tests on machines without systemd as PID 1: it holds a
// listening unix socket and starts the program with that socket passed in
// by systemd's protocol (fd 3, LISTEN_FDS=1, LISTEN_PID the program's own
// pid), and starts it again whenever it fails (Restart=on-failure) or when
// asked to restart it. Because the socket stays open in the supervisor, a
// client connecting while the program is down waits in the socket's
// listen queue until the next process accepts.
package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// Supervisor holds one listening socket and one program.
type Supervisor struct {
	path       string
	file       *os.File // the listening socket, passed to each process
	restartSec time.Duration

	mu       sync.Mutex
	argv     []string
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
	planned  bool          // the current process is being restarted on request
	stopped  bool          // Stop was called: no more starts
	starts   int
	exitErrs []error // each process's exit, in order
	log      *testns.Output
	logStart int // where the current process's output begins in log

	closeListener func() error // closes and unlinks the socket
}

// Listen makes a listening unix socket at path, mode 0660, and returns a
// supervisor holding it. path may lie in another mount namespace, through
// /proc/PID/root/...: the socket is made in that namespace's file system.
// restartSec is how long after a failure the program is started again
// (systemd's RestartSec=, 100 ms by default there).
func Listen(path string, restartSec time.Duration) (*Supervisor, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	f, err := l.File() // a duplicate, without close-on-exec once passed
	if err != nil {
		l.Close()
		return nil, err
	}
	// f keeps the socket; the listener's own descriptor is not needed, but
	// closing it would unlink the path: keep it open until Close.
	s := &Supervisor{path: path, file: f, restartSec: restartSec, log: &testns.Output{}}
	s.closeListener = l.Close
	return s, nil
}

// Start starts argv (program and arguments) with the socket passed in, and
// keeps it running until Stop; after Stop it starts it again.
func (s *Supervisor) Start(argv ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("supervisor: a process is running")
	}
	s.argv, s.stopped = argv, false
	return s.startLocked()
}

// startLocked starts one process. The shell puts its own pid in
// LISTEN_PID and then becomes the program (exec, no fork), so LISTEN_PID
// is the program's pid as systemd's protocol requires; the program must
// exec too if it is a wrapper such as nsenter without -p.
func (s *Supervisor) startLocked() error {
	args := append([]string{"-c", `export LISTEN_PID=$$; exec "$@"`, "sh"}, s.argv...)
	cmd := exec.Command("sh", args...)
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=plugin")
	cmd.ExtraFiles = []*os.File{s.file} // fd 3
	fmt.Fprintf(s.log, "--- start %d: %v\n", s.starts+1, s.argv)
	s.logStart = s.log.Len()
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return err
	}
	s.starts++
	s.cmd, s.planned = cmd, false
	exited := make(chan struct{})
	s.exited = exited
	go s.watch(cmd, exited)
	return nil
}

// watch waits for a process to exit and starts the next one as systemd
// would: after a planned restart at once, after a failure (any exit but 0)
// after restartSec, after a clean unplanned exit not at all.
func (s *Supervisor) watch(cmd *exec.Cmd, exited chan struct{}) {
	err := cmd.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exitErrs = append(s.exitErrs, err)
	fmt.Fprintf(s.log, "--- exit %d: %v\n", len(s.exitErrs), err)
	close(exited)
	if s.cmd != cmd {
		return
	}
	s.cmd = nil
	if s.stopped {
		return
	}
	switch {
	case s.planned:
	case err != nil:
		s.mu.Unlock()
		time.Sleep(s.restartSec)
		s.mu.Lock()
		if s.stopped || s.cmd != nil {
			return
		}
	default:
		return
	}
	if err := s.startLocked(); err != nil {
		fmt.Fprintf(s.log, "--- start failed: %v\n", err)
	}
}

// Pid returns the pid of the running process, 0 if none.
func (s *Supervisor) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill sends sig to the running process, as an operator or the OOM killer
// would, and returns once it exited; the supervisor then restarts it if the
// exit is a failure.
func (s *Supervisor) Kill(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return errors.New("supervisor: no process running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	<-exited
	return nil
}

// Restart is `systemctl restart`: it sends SIGTERM to the running process,
// waits for it to exit, and starts argv (the program given to Start if
// argv is empty) at once, whatever the exit. It returns the stopped
// process's exit.
func (s *Supervisor) Restart(argv ...string) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	if len(argv) > 0 {
		s.argv = argv
	}
	if cmd == nil {
		defer s.mu.Unlock()
		return s.startLocked()
	}
	s.planned = true
	s.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	<-exited
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exitErrs[len(s.exitErrs)-1]
}

// Stop sends SIGTERM to the running process, waits for it to exit, starts
// no other, and returns its exit. The socket stays open until Close.
func (s *Supervisor) Stop() error {
	s.mu.Lock()
	s.stopped = true
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-exited
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exitErrs[len(s.exitErrs)-1]
}

// Close kills a process still running, waits for it, and closes and
// removes the socket.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	s.stopped = true
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-exited
	}
	s.file.Close()
	return s.closeListener()
}

// Starts counts the processes started so far.
func (s *Supervisor) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// Log returns the output of every process, each after a "--- start N"
// line.
func (s *Supervisor) Log() string { return s.log.String() }

// CurrentLog returns the output of the latest process.
func (s *Supervisor) CurrentLog() string {
	s.mu.Lock()
	from := s.logStart
	s.mu.Unlock()
	return s.log.From(from)
}
