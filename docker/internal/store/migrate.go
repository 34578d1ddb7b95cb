package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// V1FileName is the state file of plugins before this store, version 1.
const V1FileName = "state.json"

// V1BackupName is the name state.json is renamed to once migrated; if it is
// taken, a free name V1BackupName + ".N" (N = 2, 3, ...) is used.
const V1BackupName = "state.json.v1.bak"

// errStoreWins rolls back the migration transaction when the store already
// holds records.
var errStoreWins = errors.New("store already holds records")

// MigrateFile migrates the version 1 state file dir/state.json into the
// store dir/state.db. If state.json is missing it does nothing and returns
// false. If the store holds no record, it opens one transaction, calls
// convert with the bytes of state.json to put the records, commits, and then
// renames state.json to a backup (V1BackupName); it returns true. If the
// store already holds records, the store wins: state.json is left in place,
// untouched, and MigrateFile returns false. An error from convert rolls the
// transaction back, leaves state.json in place and is returned wrapped.
//
// A crash after the commit and before the rename is finished by the next
// call: the store remembers the hash of the state.json it was built from,
// and a state.json with that hash is renamed without being converted again.
// opts are those of Open; MigrateFile closes the store before it returns.
func MigrateFile(dir string, convert func(old []byte, tx *Tx) error, opts ...Option) (migrated bool, err error) {
	oldPath := filepath.Join(dir, V1FileName)
	old, err := os.ReadFile(oldPath)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("migrating %s: %w", oldPath, err)
	}
	db, err := Open(dir, opts...)
	if err != nil {
		return false, err
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()

	sum := sha256.Sum256(old)
	hash := []byte(hex.EncodeToString(sum[:]))
	err = db.Update(func(tx *Tx) error {
		meta := tx.tx.Bucket(metaBucket)
		if bytes.Equal(meta.Get(keyMigrated), hash) {
			return nil // committed before, the rename is what is left
		}
		for _, b := range buckets {
			if k, _ := tx.tx.Bucket([]byte(b)).Cursor().First(); k != nil {
				return errStoreWins
			}
		}
		if err := convert(old, tx); err != nil {
			return fmt.Errorf("migrating %s: %w", oldPath, err)
		}
		return meta.Put(keyMigrated, hash)
	})
	if errors.Is(err, errStoreWins) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := backupV1(dir); err != nil {
		return false, fmt.Errorf("migrated %s into %s, but keeping it as a backup failed: %w", oldPath, db.path, err)
	}
	return true, nil
}

// backupV1 renames dir/state.json to the first free backup name and syncs
// the directory so that the rename survives a crash.
func backupV1(dir string) error {
	name := V1BackupName
	for n := 2; ; n++ {
		_, err := os.Lstat(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return err
		}
		name = V1BackupName + "." + strconv.Itoa(n)
	}
	if err := os.Rename(filepath.Join(dir, V1FileName), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}
