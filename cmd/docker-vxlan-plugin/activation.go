package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/docker/go-connections/sockets"
)

// listener is the socket the plugin serves on: one passed in by systemd
// (or any supervisor speaking its protocol), or one the plugin made.
type listener struct {
	net.Listener
	// activated: the socket was passed in; it belongs to the process that
	// passed it, which keeps it open across the plugin's restarts.
	activated bool
	// path is the socket the plugin made and removes when it stops; empty
	// for a socket passed in, which the plugin never removes.
	path string
}

// listen returns the socket passed in with the systemd protocol
// (LISTEN_FDS listening sockets from fd 3 on, LISTEN_PID this process's
// pid) if there is one, and otherwise makes a socket at path: owned by
// root:root, mode 0660, so only root reaches the plugin. A socket left at
// path by a plugin that was killed is replaced.
func listen(path string, log *slog.Logger) (*listener, error) {
	passed, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("sockets passed in (LISTEN_FDS): %w", err)
	}
	switch {
	case len(passed) > 1:
		for _, l := range passed {
			if l != nil {
				l.Close()
			}
		}
		return nil, fmt.Errorf("sockets passed in (LISTEN_FDS): %d; accepted: exactly one listening stream socket", len(passed))
	case len(passed) == 1 && passed[0] == nil:
		return nil, errors.New("socket passed in (LISTEN_FDS=1, fd 3) is not a listening stream socket; accepted: a ListenStream= socket")
	case len(passed) == 1:
		if addr := passed[0].Addr().String(); addr != path {
			log.Info("serving on the socket passed in, not on -socket", "passed", addr, "socket", path)
		}
		return &listener{Listener: passed[0], activated: true}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := sockets.NewUnixSocket(path, 0)
	if err != nil {
		return nil, err
	}
	return &listener{Listener: l, path: path}, nil
}

// cleanup removes the socket the plugin made; a socket passed in is left
// to the process that passed it.
func (l *listener) cleanup() error {
	if l.path == "" {
		return nil
	}
	if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
