package store

import (
	"errors"
	"fmt"
)

// Errors that errors.Is matches on the errors of Open, MigrateFile, LoadAll
// and the record reads.
var (
	// ErrCorrupt: the file is not a store of this plugin, or a record in it
	// does not decode.
	ErrCorrupt = errors.New("state store is corrupt")
	// ErrNewerVersion: the store was written by a newer plugin.
	ErrNewerVersion = errors.New("state store is of a newer version")
	// ErrInUse: another process holds the store's lock.
	ErrInUse = errors.New("state store is in use by another process")
)

// corruptError says which file is corrupt, how, and what to do.
type corruptError struct {
	path string
	what string
	err  error // the underlying error, if any
}

func (e *corruptError) Error() string {
	s := fmt.Sprintf("state store %s is corrupt: %s", e.path, e.what)
	if e.err != nil {
		s += " (" + e.err.Error() + ")"
	}
	return s + "; move it away to start with no networks, which leaves existing networks unknown to the plugin"
}

func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }
func (e *corruptError) Unwrap() error        { return e.err }

// newerError refuses a store of a newer schema version.
type newerError struct {
	path    string
	version int
}

func (e *newerError) Error() string {
	return fmt.Sprintf("state store %s is of version %d, newer than this plugin's %d; run a newer plugin", e.path, e.version, SchemaVersion)
}

func (e *newerError) Is(target error) bool { return target == ErrNewerVersion }

// inUseError says that another process holds the store.
type inUseError struct {
	path   string
	holder string // "another process" or "another process (pid N)"
	err    error
}

func (e *inUseError) Error() string {
	return fmt.Sprintf("state store %s is in use by %s; stop that plugin first or give this one another state directory", e.path, e.holder)
}

func (e *inUseError) Is(target error) bool { return target == ErrInUse }
func (e *inUseError) Unwrap() error        { return e.err }
