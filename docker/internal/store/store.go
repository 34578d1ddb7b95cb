package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the version of the store this package writes. The
// state.json file of earlier plugins was version 1.
const SchemaVersion = 2

// FileName is the name of the store's file in the state directory.
const FileName = "state.db"

// DefaultLockTimeout is how long Open waits for another process to release
// the store before it fails with ErrInUse.
const DefaultLockTimeout = time.Second

// Bucket names a kind of record.
type Bucket string

// The kinds of record the store keeps.
const (
	// Networks holds one record per network, keyed by network ID.
	Networks Bucket = "networks"
	// Endpoints holds one record per endpoint, keyed by EndpointKey.
	Endpoints Bucket = "endpoints"
	// Nodes holds one record per swarm peer, keyed by its address.
	Nodes Bucket = "nodes"
	// VNIs holds one record per VNI a swarm manager allocated or recorded
	// for a global network, keyed by network ID.
	VNIs Bucket = "vnis"
	// Pools holds one record per address pool of the plugin's IPAM driver,
	// keyed by pool ID.
	Pools Bucket = "pools"
	// Leases holds one record per address the IPAM driver handed out,
	// keyed by LeaseKey.
	Leases Bucket = "leases"
)

// buckets lists every record bucket; Open creates them in a new store.
var buckets = []Bucket{Networks, Endpoints, Nodes, VNIs, Pools, Leases}

// addedBuckets are buckets added to schema version 2 after its first
// stores were written: they hold records an older plugin of the same
// schema never wrote, so Open creates them in an existing store that lacks
// them rather than calling it corrupt. Every other bucket is required.
var addedBuckets = []Bucket{VNIs, Pools, Leases}

// metaBucket holds the schema version and the migration marker.
var metaBucket = []byte("meta")

var (
	keyVersion  = []byte("version")
	keyMigrated = []byte("migrated-v1-sha256")
)

// DB is an open store. Its methods may be called from several goroutines:
// View transactions run concurrently, Update transactions one at a time.
type DB struct {
	bolt *bolt.DB
	path string
}

// Tx is a transaction: read-only inside DB.View, read-write inside
// DB.Update. It is valid only inside the function it is passed to.
type Tx struct {
	tx   *bolt.Tx
	path string
}

// Option changes how Open opens a store.
type Option func(*options)

type options struct {
	lockTimeout time.Duration
}

// WithLockTimeout sets how long Open waits for another process to release
// the store (DefaultLockTimeout if not given). It must be positive.
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = d }
}

// Open opens the store of the state directory dir, creating dir (mode 0700)
// and a new empty store (mode 0600) if needed. It fails with ErrInUse if
// another process holds the store past the lock timeout, with
// ErrNewerVersion if the store was written by a newer plugin, and with
// ErrCorrupt if the file is not a store of this plugin.
func Open(dir string, opts ...Option) (*DB, error) {
	o := options{lockTimeout: DefaultLockTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.lockTimeout <= 0 {
		return nil, fmt.Errorf("opening state store: lock timeout %v: must be positive", o.lockTimeout)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("opening state store: state directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)

	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout})
	if err != nil {
		return nil, openError(path, err)
	}
	db := &DB{bolt: bdb, path: path}
	if created {
		if err := syncDir(dir); err != nil {
			db.Close()
			return nil, fmt.Errorf("opening state store %s: %w", path, err)
		}
	}
	if err := db.checkOrInit(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openError turns an error of bolt.Open into one that says what it means
// for the plugin.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		holder := "another process"
		if pid := lockHolder(path); pid > 0 {
			holder = fmt.Sprintf("another process (pid %d)", pid)
		}
		return &inUseError{path: path, holder: holder, err: err}
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch),
		errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrInvalidMapping):
		return &corruptError{path: path, what: "not a bolt database", err: err}
	}
	return fmt.Errorf("opening state store %s: %w", path, err)
}

// checkOrInit initializes a store with no bucket at all (a new file, or
// one whose first commit a crash interrupted) and otherwise checks its
// version and buckets, committing only to create missing addedBuckets.
func (db *DB) checkOrInit() (err error) {
	// bbolt panics on some damaged pages rather than returning an error.
	defer func() {
		if r := recover(); r != nil {
			err = &corruptError{path: db.path, what: fmt.Sprintf("damaged pages (%v)", r)}
		}
	}()
	empty := true
	err = db.bolt.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func([]byte, *bolt.Bucket) error {
			empty = false
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("opening state store %s: %w", db.path, err)
	}
	if empty {
		if err := db.bolt.Update(initStore); err != nil {
			return fmt.Errorf("initializing state store %s: %w", db.path, err)
		}
		return nil
	}
	var missing []Bucket
	err = db.bolt.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			return &corruptError{path: db.path, what: "bad meta: no meta bucket"}
		}
		raw := meta.Get(keyVersion)
		v, perr := strconv.Atoi(string(raw))
		switch {
		case raw == nil:
			return &corruptError{path: db.path, what: "bad meta: no version"}
		case perr != nil || v < 2:
			return &corruptError{path: db.path, what: fmt.Sprintf("bad meta: version %q", raw)}
		case v > SchemaVersion:
			return &newerError{path: db.path, version: v}
		}
		for _, b := range buckets {
			switch {
			case tx.Bucket([]byte(b)) != nil:
			case slices.Contains(addedBuckets, b):
				missing = append(missing, b)
			default:
				return &corruptError{path: db.path, what: fmt.Sprintf("bad meta: bucket %q missing", b)}
			}
		}
		return nil
	})
	if err != nil || len(missing) == 0 {
		return err
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		for _, b := range missing {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("adding buckets %v to state store %s: %w", missing, db.path, err)
	}
	return nil
}

// initStore creates the meta bucket, the version and every record bucket.
func initStore(tx *bolt.Tx) error {
	meta, err := tx.CreateBucket(metaBucket)
	if err != nil {
		return err
	}
	if err := meta.Put(keyVersion, []byte(strconv.Itoa(SchemaVersion))); err != nil {
		return err
	}
	for _, b := range buckets {
		if _, err := tx.CreateBucket([]byte(b)); err != nil {
			return err
		}
	}
	return nil
}

// syncDir syncs a directory so that a file just created in it survives a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Path is the store's file.
func (db *DB) Path() string { return db.path }

// Close closes the store and releases its lock.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("closing state store %s: %w", db.path, err)
	}
	return nil
}

// Update runs fn in a read-write transaction and commits it (one sync of
// the file) if fn returns nil; an error from fn rolls everything back and is
// returned as is.
func (db *DB) Update(fn func(tx *Tx) error) error {
	var fnErr error
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		fnErr = fn(&Tx{tx: btx, path: db.path})
		return fnErr
	})
	if err != nil && err != fnErr {
		return fmt.Errorf("committing to state store %s: %w", db.path, err)
	}
	return err
}

// View runs fn in a read-only transaction and returns its error.
func (db *DB) View(fn func(tx *Tx) error) error {
	return db.bolt.View(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, path: db.path})
	})
}

// Load calls fn with every record of every bucket, in one read-only
// transaction: the buckets in the order Networks, Endpoints, Nodes, VNIs (so a
// network comes before its endpoints), each in key order. fn decodes the
// record; an error from fn means the record is bad, and Load stops and
// returns it as ErrCorrupt naming the bucket and key (errors.As still finds
// fn's error). raw is valid only during fn and must not be modified.
func (db *DB) Load(fn func(b Bucket, key string, raw json.RawMessage) error) error {
	return db.View(func(tx *Tx) error {
		return tx.forEachRecord(func(b Bucket, k, v []byte) error {
			if err := fn(b, string(k), v); err != nil {
				return &corruptError{path: tx.path, what: fmt.Sprintf("record %s/%q does not decode", b, k), err: err}
			}
			return nil
		})
	})
}

// LoadAll reads every record of every bucket: per bucket, key to record.
// The records are copies, valid after LoadAll returns. A record that is not
// valid JSON fails LoadAll with ErrCorrupt. Load lets the caller decode
// each record in place instead, without the copy and the extra check.
func (db *DB) LoadAll() (map[Bucket]map[string]json.RawMessage, error) {
	all := make(map[Bucket]map[string]json.RawMessage, len(buckets))
	err := db.View(func(tx *Tx) error {
		// One allocation for all the records: sizes first.
		size, count := 0, map[Bucket]int{}
		if err := tx.forEachRecord(func(b Bucket, _, v []byte) error {
			size += len(v)
			count[b]++
			return nil
		}); err != nil {
			return err
		}
		for _, b := range buckets {
			all[b] = make(map[string]json.RawMessage, count[b])
		}
		arena := make([]byte, 0, size)
		return tx.forEachRecord(func(b Bucket, k, v []byte) error {
			if err := tx.checkRecord(b, k, v); err != nil {
				return err
			}
			start := len(arena)
			arena = append(arena, v...)
			all[b][string(k)] = arena[start:len(arena):len(arena)]
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}

// forEachRecord calls fn with every key and value of every record bucket,
// in the order of buckets.
func (tx *Tx) forEachRecord(fn func(b Bucket, k, v []byte) error) error {
	for _, b := range buckets {
		if err := tx.forEachPrefix(b, nil, func(k, v []byte) error { return fn(b, k, v) }); err != nil {
			return err
		}
	}
	return nil
}

// EndpointKey is the key of an endpoint's record in Endpoints.
func EndpointKey(networkID, endpointID string) string {
	return networkID + "/" + endpointID
}

// LeaseKey is the key of a lease's record in Leases: the pool's ID, "@"
// and the address.
func LeaseKey(poolID, addr string) string { return poolID + "@" + addr }

// SplitEndpointKey splits a key of Endpoints into its network and endpoint
// IDs; ok is false if key is not of the form EndpointKey makes.
func SplitEndpointKey(key string) (networkID, endpointID string, ok bool) {
	networkID, endpointID, ok = strings.Cut(key, "/")
	if !ok || checkID(networkID) != nil || checkID(endpointID) != nil {
		return "", "", false
	}
	return networkID, endpointID, true
}

// checkID checks an ID or address used as a key, or as part of one.
func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("empty")
	case strings.Contains(id, "/"):
		return fmt.Errorf("%q contains \"/\"", id)
	}
	return nil
}

// knownBucket fails if b is not one of the store's buckets.
func knownBucket(b Bucket) error {
	for _, k := range buckets {
		if k == b {
			return nil
		}
	}
	return fmt.Errorf("state store: bucket %q: unknown, must be one of %v", b, buckets)
}

// bucket returns the bbolt bucket of b after checking key for it: a
// network ID, a swarm address, or an EndpointKey.
func (tx *Tx) bucket(b Bucket, key string) (*bolt.Bucket, error) {
	if err := knownBucket(b); err != nil {
		return nil, err
	}
	if b == Endpoints {
		if _, _, ok := SplitEndpointKey(key); !ok {
			return nil, fmt.Errorf("state store: %s key %q: must be network ID + \"/\" + endpoint ID, both non-empty and without \"/\"", b, key)
		}
	} else if err := checkID(key); err != nil {
		return nil, fmt.Errorf("state store: %s key: %w", b, err)
	}
	return tx.tx.Bucket([]byte(b)), nil
}

// checkRecord fails with ErrCorrupt if a stored record is not valid JSON.
func (tx *Tx) checkRecord(b Bucket, key, v []byte) error {
	if !json.Valid(v) {
		return &corruptError{path: tx.path, what: fmt.Sprintf("record %s/%q is not valid JSON", b, key)}
	}
	return nil
}

// Put stores value, encoded with encoding/json, under key in bucket b,
// replacing any record there.
func (tx *Tx) Put(b Bucket, key string, value any) error {
	bk, err := tx.bucket(b, key)
	if err != nil {
		return err
	}
	v, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("state store: encoding %s/%s: %w", b, key, err)
	}
	if err := bk.Put([]byte(key), v); err != nil {
		return fmt.Errorf("state store: storing %s/%s: %w", b, key, err)
	}
	return nil
}

// Get decodes the record under key in bucket b into value (with
// encoding/json, so a *json.RawMessage takes the raw record). found is false,
// and value untouched, if there is no such record.
func (tx *Tx) Get(b Bucket, key string, value any) (found bool, err error) {
	bk, err := tx.bucket(b, key)
	if err != nil {
		return false, err
	}
	v := bk.Get([]byte(key))
	if v == nil {
		return false, nil
	}
	if err := json.Unmarshal(v, value); err != nil {
		if !json.Valid(v) {
			return false, tx.checkRecord(b, []byte(key), v)
		}
		return false, fmt.Errorf("state store: decoding %s/%s: %w", b, key, err)
	}
	return true, nil
}

// Delete removes the record under key in bucket b; a missing record is not
// an error.
func (tx *Tx) Delete(b Bucket, key string) error {
	bk, err := tx.bucket(b, key)
	if err != nil {
		return err
	}
	if err := bk.Delete([]byte(key)); err != nil {
		return fmt.Errorf("state store: deleting %s/%s: %w", b, key, err)
	}
	return nil
}

// DeleteNetwork removes the network id and every endpoint of it.
func (tx *Tx) DeleteNetwork(id string) error {
	if err := tx.Delete(Networks, id); err != nil {
		return err
	}
	var keys [][]byte
	if err := tx.forEachPrefix(Endpoints, []byte(id+"/"), func(k, _ []byte) error {
		keys = append(keys, bytes.Clone(k))
		return nil
	}); err != nil {
		return err
	}
	eps := tx.tx.Bucket([]byte(Endpoints))
	for _, k := range keys {
		if err := eps.Delete(k); err != nil {
			return fmt.Errorf("state store: deleting %s/%s: %w", Endpoints, k, err)
		}
	}
	return nil
}

// ForEach calls fn with every record of bucket b, in key order, and stops
// at the first error, which it returns. raw is valid only during fn and must
// not be modified; copy it to keep it.
func (tx *Tx) ForEach(b Bucket, fn func(key string, raw json.RawMessage) error) error {
	return tx.forEachPrefix(b, nil, func(k, v []byte) error {
		if err := tx.checkRecord(b, k, v); err != nil {
			return err
		}
		return fn(string(k), v)
	})
}

// ForEachEndpoint calls fn with every endpoint of the network networkID, in
// endpoint ID order, like ForEach.
func (tx *Tx) ForEachEndpoint(networkID string, fn func(endpointID string, raw json.RawMessage) error) error {
	if err := checkID(networkID); err != nil {
		return fmt.Errorf("state store: network ID: %w", err)
	}
	prefix := []byte(networkID + "/")
	return tx.forEachPrefix(Endpoints, prefix, func(k, v []byte) error {
		if err := tx.checkRecord(Endpoints, k, v); err != nil {
			return err
		}
		return fn(string(k[len(prefix):]), v)
	})
}

// forEachPrefix calls fn with every key and value of bucket b that begins
// with prefix (all of them if prefix is empty).
func (tx *Tx) forEachPrefix(b Bucket, prefix []byte, fn func(k, v []byte) error) error {
	if err := knownBucket(b); err != nil {
		return err
	}
	c := tx.tx.Bucket([]byte(b)).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}
