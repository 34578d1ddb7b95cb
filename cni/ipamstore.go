package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/ipam"
	"golang.org/x/sys/unix"
)

// leaseFile is the content of a lease file: which attachment holds the
// address, and since when.
type leaseFile struct {
	ContainerID string    `json:"containerID"`
	IfName      string    `json:"ifname"`
	Time        time.Time `json:"time"`
}

// heldLease is a lease file read back: its address and holder.
type heldLease struct {
	Addr netip.Addr
	leaseFile
}

// leaseDir is a network's directory of leases (one file per address,
// named by it), locked by this process: concurrent calls of the IPAM
// plugin on one host take turns on its lock file. It is the allocator's
// store for one attachment's ADD (container and ifName name the holder of
// the leases it writes).
type leaseDir struct {
	dir                 string
	lock                *os.File
	containerID, ifName string
}

// openLeases locks the directory dir, making it when create is set; it
// returns nil and no error when dir does not exist and create is not set.
func openLeases(dir string, create bool) (*leaseDir, error) {
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("ipam lease directory: %w", err)
		}
	} else if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ipam lease lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("ipam lease lock %s: %w", f.Name(), err)
	}
	return &leaseDir{dir: dir, lock: f}, nil
}

// close releases the lock.
func (d *leaseDir) close() { d.lock.Close() }

// read returns every lease of the directory. Files whose names are not
// addresses (the lock, temporary files) are skipped.
func (d *leaseDir) read() ([]heldLease, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("ipam leases: %w", err)
	}
	var out []heldLease
	for _, e := range entries {
		addr, err := netip.ParseAddr(e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("ipam lease %s: %w", e.Name(), err)
		}
		var f leaseFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("ipam lease %s: %w", filepath.Join(d.dir, e.Name()), err)
		}
		out = append(out, heldLease{Addr: addr, leaseFile: f})
	}
	return out, nil
}

// of returns the leases of an attachment.
func of(leases []heldLease, containerID, ifName string) []heldLease {
	var out []heldLease
	for _, l := range leases {
		if l.ContainerID == containerID && l.IfName == ifName {
			out = append(out, l)
		}
	}
	return out
}

// PutLease writes the lease's file atomically (a temporary file renamed
// over it), held by the directory's attachment. The pool is not part of
// the name: the network's subnets do not overlap.
func (d *leaseDir) PutLease(_ string, l ipam.Lease) error {
	b, err := json.Marshal(leaseFile{ContainerID: d.containerID, IfName: d.ifName, Time: l.Time})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.dir, ".lease-")
	if err != nil {
		return fmt.Errorf("ipam lease %s: %w", l.Addr, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(d.dir, l.Addr.String()))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ipam lease %s: %w", l.Addr, err)
	}
	return nil
}

// DeleteLease removes the lease's file; one that is gone is not an error.
func (d *leaseDir) DeleteLease(_ string, addr netip.Addr) error {
	if err := os.Remove(filepath.Join(d.dir, addr.String())); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ipam lease %s: %w", addr, err)
	}
	return nil
}
