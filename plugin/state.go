package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// StateVersion is the version of the state file this plugin writes. A file
// of a newer version is refused rather than misread.
const StateVersion = 1

// State is what the plugin keeps on disk: Docker does not replay
// CreateNetwork to a driver that restarted, so without it a restarted
// plugin would not know its networks.
type State struct {
	Version  int                 `json:"version"`
	Networks []*NetworkState     `json:"networks"`
	Nodes    []NodeDiscoveryData `json:"nodes,omitempty"`
}

// NetworkState is one network and its endpoints.
type NetworkState struct {
	Spec      *NetworkSpec `json:"spec"`
	Endpoints []*Endpoint  `json:"endpoints"`
}

// Store reads and writes the state file of a directory.
type Store struct {
	path string
}

// NewStore returns the store of the state file in dir, creating dir
// (mode 0700) if needed.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &Store{path: filepath.Join(dir, "state.json")}, nil
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// Load reads the state. A missing file is an empty state; a file that
// cannot be read, is not valid, or is of a newer version is an error that
// says so and what to do: the plugin never resets state silently.
func (s *Store) Load() (*State, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{Version: StateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state file %s is corrupt (%v); move it away to start with no networks, which leaves existing networks unknown to the plugin", s.path, err)
	}
	switch {
	case st.Version > StateVersion:
		return nil, fmt.Errorf("state file %s is of version %d, newer than this plugin's %d; run a newer plugin", s.path, st.Version, StateVersion)
	case st.Version < 1:
		return nil, fmt.Errorf("state file %s has no valid version; move it away to start with no networks", s.path)
	}
	for i, n := range st.Networks {
		if n == nil || n.Spec == nil || n.Spec.ID == "" {
			return nil, fmt.Errorf("state file %s: network %d has no spec or ID", s.path, i)
		}
	}
	return &st, nil
}

// Save writes the state atomically: a temporary file in the same
// directory, synced, renamed over the old one, and the directory synced, so
// a crash leaves either the old state or the new one.
func (s *Store) Save(st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, ".state-*.json")
	if err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("saving state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	return nil
}
