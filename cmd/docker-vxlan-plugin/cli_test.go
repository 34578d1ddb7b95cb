package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runBinary runs the built binary with args and only the environment env
// (and PATH), and returns its exit code, stdout and stderr. The binary
// must end by itself within 10 s: one that started the plugin would not.
func runBinary(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v: still running after 10 s (it started the plugin?)\n%s", args, stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// The command line cannot surprise: an unknown command or argument, a
// typo, a bad flag value or environment variable is refused with exit code
// 2 before anything is written; version and help are commands; -h and help
// list the commands, the flags and the environment variables.
func TestCommandLine(t *testing.T) {
	bin := buildPlugin(t)
	dir := t.TempDir()
	// Flags that would keep a started plugin away from the host's paths.
	safe := []string{"-socket", dir + "/s.sock", "-state-dir", dir + "/state"}
	usageLists := []string{"status [flags]", "version", "help", "-scope", "-state-dir", "-managed-plugin", "DVP_SCOPE", "DVP_DEBUG", "managed plugin: VTEPDEV"}
	for _, c := range []struct {
		name   string
		env    []string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{name: "typo", args: []string{"stauts"}, code: 2, stderr: append([]string{`unknown command "stauts" (did you mean "status"?)`}, usageLists...)},
		{name: "unknown command", args: append([]string{"start"}, safe...), code: 2, stderr: []string{`unknown command "start"; nothing was done`}},
		{name: "argument after flags", args: append(append([]string{}, safe...), "status"), code: 2,
			stderr: []string{`unexpected argument "status" after the flags`}},
		{name: "unknown flag", args: append([]string{"-bogus"}, safe...), code: 2, stderr: []string{"flag provided but not defined: -bogus"}},
		{name: "bad scope", args: append([]string{"-scope", "bogus"}, safe...), code: 2, stderr: []string{`-scope (DVP_SCOPE) "bogus": accepted: local, global`}},
		{name: "bad environment", env: []string{"DVP_SCOPE=bogus"}, args: safe, code: 2, stderr: []string{`-scope (DVP_SCOPE) "bogus"`}},
		{name: "bad managed setting", env: []string{"SCOPE=bogus"}, args: append([]string{"-managed-plugin"}, safe...), code: 2,
			stderr: []string{`-scope (SCOPE) "bogus"`}},
		{name: "bad call timeout", args: append([]string{"-call-timeout", "0s"}, safe...), code: 2, stderr: []string{"-call-timeout 0s: accepted"}},
		{name: "bad peers", env: []string{"DVP_PEERS=198.18.0.1,x"}, args: safe, code: 2, stderr: []string{`-peers (DVP_PEERS)`}},
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"github.com/TrilliumIT/docker-vxlan-plugin", "commit "}},
		{name: "version flag", args: []string{"-version"}, code: 0, stdout: []string{"github.com/TrilliumIT/docker-vxlan-plugin"}},
		{name: "version with argument", args: []string{"version", "x"}, code: 2, stderr: []string{`unexpected argument "x"`}},
		{name: "help", args: []string{"help"}, code: 0, stdout: usageLists},
		{name: "help status", args: []string{"help", "status"}, code: 0, stdout: []string{"Usage: docker-vxlan-plugin status", "-state-dir"}},
		{name: "help topic", args: []string{"help", "bogus"}, code: 2, stderr: []string{`unknown topic "bogus"`}},
		{name: "-h", args: []string{"-h"}, code: 0, stderr: usageLists},
		{name: "status -h", args: []string{"status", "-h"}, code: 0, stderr: []string{"Usage: docker-vxlan-plugin status"}},
		{name: "status argument", args: []string{"status", "extra"}, code: statusError, stderr: []string{`unexpected argument "extra"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, bin, c.env, c.args...)
			if code != c.code {
				t.Errorf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", c.args, code, c.code, stdout, stderr)
			}
			for _, want := range c.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("%v: stdout lacks %q:\n%s", c.args, want, stdout)
				}
			}
			for _, want := range c.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("%v: stderr lacks %q:\n%s", c.args, want, stderr)
				}
			}
			// Nothing was written: no state directory, no socket.
			if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
				t.Errorf("%v: wrote %v (%v)", c.args, ents, err)
			}
		})
	}
}

// A second plugin started by hand on the socket of one that runs fails,
// naming the socket and the process that listens on it, and leaves the
// socket (and the state directory) alone.
func TestSecondInstanceKeepsLiveSocket(t *testing.T) {
	bin := buildPlugin(t)
	dir := t.TempDir()
	sock := dir + "/vxlan.sock"
	listenUnix(t, sock, nil)
	code, _, stderr := runBinary(t, bin, nil, "-socket", sock, "-state-dir", dir+"/state")
	want := fmt.Sprintf("-socket %s: in use: process %d (", sock, os.Getpid())
	if code != exitError || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, want %d and %q in:\n%s", code, exitError, want, stderr)
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Fatalf("the live socket is gone: %v", err)
	} else {
		c.Close()
	}
	if _, err := os.Stat(dir + "/state"); !os.IsNotExist(err) {
		t.Fatalf("state directory touched: %v", err)
	}
}
