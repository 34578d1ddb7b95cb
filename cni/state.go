package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"golang.org/x/sys/unix"
)

// defaultStateDir holds, per network, a lock file and one record per
// container attachment. It is under the CNI state directory, which a
// reboot clears along with the links (it is on /var/lib, but the records
// are checked against the kernel by DEL and GC).
const defaultStateDir = "/var/lib/cni/vxlan"

// envStateDir overrides defaultStateDir (for tests).
const envStateDir = "VXLAN_CNI_STATE_DIR"

func stateDir() string {
	if d := os.Getenv(envStateDir); d != "" {
		return d
	}
	return defaultStateDir
}

// record is one container attachment of a network: written before the
// attachment's links are made, removed after they are deleted, so that a
// network's links are removed only when no record remains, whatever
// crashed in between.
type record struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
	Netns       string `json:"netns"`
	EndpointID  string `json:"endpointID"`
	// Segment is set when the attachment is on another network's links
	// (a Docker network with the VNI on this host).
	Segment *segment `json:"segment,omitempty"`
}

// attachedTo returns the spec of the links the attachment is on: spec, or
// spec on the segment it joined.
func (r *record) attachedTo(spec *fabric.NetworkSpec) *fabric.NetworkSpec {
	if r.Segment != nil {
		return r.Segment.on(spec)
	}
	return spec
}

// netState is the state directory of one network, locked.
type netState struct {
	dir  string
	lock *os.File
}

// lockNetwork opens (making it) the state directory of the network with
// the given ID and takes its lock: every ADD, DEL, CHECK and GC of the
// network on this host runs under it. The directory and its lock file are
// removed with the last record, so the lock is taken again when the lock
// file it got is no longer the one in the directory.
func lockNetwork(id string) (*netState, error) {
	dir := filepath.Join(stateDir(), id)
	for range 100 {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		name := filepath.Join(dir, "lock")
		f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
		if errors.Is(err, os.ErrNotExist) {
			continue // the directory went in between
		}
		if err != nil {
			return nil, fmt.Errorf("state lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("state lock %s: %w", name, err)
		}
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(name, &now) == nil && held.Ino == now.Ino {
			return &netState{dir: dir, lock: f}, nil
		}
		f.Close() // removed while this process waited: lock the new one
	}
	return nil, fmt.Errorf("state lock in %s: the lock file keeps changing", dir)
}

// unlock releases the lock; when the network has no records left, its
// directory goes too.
func (s *netState) unlock() {
	if recs, err := s.records(); err == nil && len(recs) == 0 {
		_ = os.Remove(s.lock.Name())
		_ = os.Remove(s.dir)
	}
	s.lock.Close()
}

func (s *netState) path(endpointID string) string {
	return filepath.Join(s.dir, endpointID+".json")
}

// put writes the record of an attachment (atomically: a crash leaves the
// old record or the new one).
func (s *netState) put(r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := s.path(r.EndpointID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("state record: %w", err)
	}
	if err := os.Rename(tmp, s.path(r.EndpointID)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("state record: %w", err)
	}
	return nil
}

// remove deletes an attachment's record; a missing one is not an error.
func (s *netState) remove(endpointID string) error {
	if err := os.Remove(s.path(endpointID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state record: %w", err)
	}
	return nil
}

// get returns an attachment's record, or nil.
func (s *netState) get(endpointID string) (*record, error) {
	return readRecordFile(s.path(endpointID))
}

// readRecord reads an attachment's record without the network's lock (a
// record is replaced whole), or nil when there is none.
func readRecord(networkStateID, endpointID string) (*record, error) {
	return readRecordFile(filepath.Join(stateDir(), networkStateID, endpointID+".json"))
}

func readRecordFile(path string) (*record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state record: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("state record %s: %w", path, err)
	}
	return &r, nil
}

// records lists the network's attachments.
func (s *netState) records() ([]record, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	var out []record
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		r, err := readRecordFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}
