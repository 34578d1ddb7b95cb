package store

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeV1 is a small document in the shape of the version 1 state.json.
const fakeV1 = `{"version":1,"networks":[
 {"spec":{"ID":"n1","VNI":10},"endpoints":[{"ID":"e1"},{"ID":"e2"}]},
 {"spec":{"ID":"n2","VNI":20},"endpoints":[]}],
 "nodes":[{"Address":"198.18.0.2"}]}`

// convertFakeV1 puts the records of fakeV1 and counts its calls.
func convertFakeV1(calls *int) func(old []byte, tx *Tx) error {
	return func(old []byte, tx *Tx) error {
		*calls++
		var st struct {
			Networks []struct {
				Spec      struct{ ID string }   `json:"spec"`
				Endpoints []struct{ ID string } `json:"endpoints"`
			} `json:"networks"`
			Nodes []struct{ Address string } `json:"nodes"`
		}
		if err := json.Unmarshal(old, &st); err != nil {
			return err
		}
		for _, n := range st.Networks {
			if err := tx.Put(Networks, n.Spec.ID, n.Spec); err != nil {
				return err
			}
			for _, e := range n.Endpoints {
				if err := tx.Put(Endpoints, EndpointKey(n.Spec.ID, e.ID), e); err != nil {
					return err
				}
			}
		}
		for _, nd := range st.Nodes {
			if err := tx.Put(Nodes, nd.Address, nd); err != nil {
				return err
			}
		}
		return nil
	}
}

func writeV1(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, V1FileName), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func loadAll(t *testing.T, dir string) map[Bucket]map[string]json.RawMessage {
	t.Helper()
	db := openT(t, dir)
	all, err := db.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return all
}

func TestMigrateFile(t *testing.T) {
	dir := t.TempDir()
	writeV1(t, dir, fakeV1)
	calls := 0
	migrated, err := MigrateFile(dir, convertFakeV1(&calls))
	if err != nil || !migrated || calls != 1 {
		t.Fatalf("MigrateFile = %v, %v after %d conversions; want true, nil after 1", migrated, err, calls)
	}
	if exists(filepath.Join(dir, V1FileName)) {
		t.Error("state.json still there after migration")
	}
	if got := readFile(t, filepath.Join(dir, V1BackupName)); got != fakeV1 {
		t.Errorf("backup = %q, want the old file unchanged", got)
	}
	all := loadAll(t, dir)
	if len(all[Networks]) != 2 || len(all[Endpoints]) != 2 || len(all[Nodes]) != 1 ||
		string(all[Endpoints]["n1/e2"]) != `{"ID":"e2"}` {
		t.Errorf("migrated records = %v", all)
	}

	// Nothing left to migrate: no state.json.
	migrated, err = MigrateFile(dir, convertFakeV1(&calls))
	if err != nil || migrated || calls != 1 {
		t.Errorf("second MigrateFile = %v, %v, %d conversions; want false, nil, no conversion", migrated, err, calls)
	}
}

func TestMigrateFileStoreWins(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	if err := db.Update(func(tx *Tx) error { return tx.Put(Networks, "kept", 1) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	writeV1(t, dir, fakeV1)
	calls := 0
	migrated, err := MigrateFile(dir, convertFakeV1(&calls))
	if err != nil || migrated || calls != 0 {
		t.Fatalf("MigrateFile with a store of records = %v, %v, %d conversions; want false, nil, none", migrated, err, calls)
	}
	if got := readFile(t, filepath.Join(dir, V1FileName)); got != fakeV1 {
		t.Error("state.json changed although the store won")
	}
	if exists(filepath.Join(dir, V1BackupName)) {
		t.Error("a backup was made although nothing was migrated")
	}
	all := loadAll(t, dir)
	if len(all[Networks]) != 1 || all[Networks]["kept"] == nil || len(all[Endpoints]) != 0 {
		t.Errorf("store after MigrateFile = %v, want only its own record", all)
	}
}

func TestMigrateFileEmptyStoreMigrates(t *testing.T) {
	for name, empty := range map[string]func(t *testing.T, dir string){
		"store with no record": func(t *testing.T, dir string) { openT(t, dir).Close() },
		"zero-length file": func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, FileName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			empty(t, dir)
			writeV1(t, dir, fakeV1)
			calls := 0
			if migrated, err := MigrateFile(dir, convertFakeV1(&calls)); err != nil || !migrated || calls != 1 {
				t.Fatalf("MigrateFile into an empty store = %v, %v, %d conversions", migrated, err, calls)
			}
			if all := loadAll(t, dir); len(all[Networks]) != 2 {
				t.Errorf("migrated networks = %v", all[Networks])
			}
		})
	}
}

func TestMigrateFileBackupNeverOverwritten(t *testing.T) {
	dir := t.TempDir()
	older := `{"version":1,"networks":[]}`
	if err := os.WriteFile(filepath.Join(dir, V1BackupName), []byte(older), 0o600); err != nil {
		t.Fatal(err)
	}
	writeV1(t, dir, fakeV1)
	calls := 0
	if migrated, err := MigrateFile(dir, convertFakeV1(&calls)); err != nil || !migrated {
		t.Fatalf("MigrateFile = %v, %v", migrated, err)
	}
	if got := readFile(t, filepath.Join(dir, V1BackupName)); got != older {
		t.Error("the earlier backup was overwritten")
	}
	if got := readFile(t, filepath.Join(dir, V1BackupName+".2")); got != fakeV1 {
		t.Errorf("new backup = %q", got)
	}
}

// A crash after the commit and before the rename leaves state.db and
// state.json; the next MigrateFile renames without converting again.
func TestMigrateFileFinishesInterruptedRename(t *testing.T) {
	dir := t.TempDir()
	writeV1(t, dir, fakeV1)
	calls := 0
	if _, err := MigrateFile(dir, convertFakeV1(&calls)); err != nil {
		t.Fatal(err)
	}
	// Undo the rename, as if the crash came just before it.
	if err := os.Rename(filepath.Join(dir, V1BackupName), filepath.Join(dir, V1FileName)); err != nil {
		t.Fatal(err)
	}
	migrated, err := MigrateFile(dir, convertFakeV1(&calls))
	if err != nil || !migrated || calls != 1 {
		t.Fatalf("MigrateFile after the crash = %v, %v, %d conversions; want true, nil, still 1", migrated, err, calls)
	}
	if exists(filepath.Join(dir, V1FileName)) || readFile(t, filepath.Join(dir, V1BackupName)) != fakeV1 {
		t.Error("state.json not renamed to its backup")
	}
}

func TestMigrateFileConvertErrorLeavesAll(t *testing.T) {
	dir := t.TempDir()
	writeV1(t, dir, fakeV1)
	bad := errors.New("network 3 has no spec")
	migrated, err := MigrateFile(dir, func(old []byte, tx *Tx) error {
		if err := tx.Put(Networks, "n1", 1); err != nil {
			return err
		}
		return bad
	})
	if migrated || !errors.Is(err, bad) || !strings.Contains(err.Error(), "migrating "+filepath.Join(dir, V1FileName)) {
		t.Fatalf("MigrateFile with a failing conversion = %v, %v", migrated, err)
	}
	if readFile(t, filepath.Join(dir, V1FileName)) != fakeV1 || exists(filepath.Join(dir, V1BackupName)) {
		t.Error("state.json moved although the conversion failed")
	}
	if all := loadAll(t, dir); len(all[Networks]) != 0 {
		t.Errorf("records of a failed conversion stored: %v", all)
	}
}

func TestMigrateFileRefusesCorruptStore(t *testing.T) {
	dir := t.TempDir()
	writeV1(t, dir, fakeV1)
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	calls := 0
	if _, err := MigrateFile(dir, convertFakeV1(&calls)); !errors.Is(err, ErrCorrupt) || calls != 0 {
		t.Fatalf("MigrateFile with a corrupt store = %v, %d conversions; want ErrCorrupt, none", err, calls)
	}
	if readFile(t, filepath.Join(dir, V1FileName)) != fakeV1 {
		t.Error("state.json changed")
	}
}
