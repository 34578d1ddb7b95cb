package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

type netRec struct {
	ID  string `json:"id"`
	VNI int    `json:"vni"`
}

func openT(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPutGetDelete(t *testing.T) {
	db := openT(t, t.TempDir())
	if err := db.Update(func(tx *Tx) error {
		if err := tx.Put(Networks, "n1", netRec{ID: "n1", VNI: 10}); err != nil {
			return err
		}
		if err := tx.Put(Endpoints, EndpointKey("n1", "e1"), map[string]string{"mac": "02:00:00:00:00:01"}); err != nil {
			return err
		}
		return tx.Put(Nodes, "198.18.0.2", map[string]int{"port": 4789})
	}); err != nil {
		t.Fatal(err)
	}
	err := db.View(func(tx *Tx) error {
		var got netRec
		found, err := tx.Get(Networks, "n1", &got)
		if err != nil || !found || got != (netRec{ID: "n1", VNI: 10}) {
			t.Errorf("Get(n1) = %v, %v, %+v; want the record", found, err, got)
		}
		var raw json.RawMessage
		found, err = tx.Get(Nodes, "198.18.0.2", &raw)
		if err != nil || !found || string(raw) != `{"port":4789}` {
			t.Errorf("Get(node) = %v, %v, %s", found, err, raw)
		}
		found, err = tx.Get(Networks, "missing", &got)
		if err != nil || found {
			t.Errorf("Get(missing) = %v, %v; want not found, no error", found, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error {
		if err := tx.Delete(Networks, "n1"); err != nil {
			return err
		}
		return tx.Delete(Networks, "never-there") // not an error
	}); err != nil {
		t.Fatal(err)
	}
	all, err := db.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(all[Networks]) != 0 || len(all[Endpoints]) != 1 || len(all[Nodes]) != 1 {
		t.Errorf("LoadAll after delete = %v", all)
	}
}

func TestUpdateErrorRollsBack(t *testing.T) {
	db := openT(t, t.TempDir())
	boom := errors.New("boom")
	err := db.Update(func(tx *Tx) error {
		if err := tx.Put(Networks, "n1", netRec{ID: "n1"}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update error = %v, want fn's own error", err)
	}
	all, err := db.LoadAll()
	if err != nil || len(all[Networks]) != 0 {
		t.Errorf("after a failed Update: %v, %v; want nothing stored", all, err)
	}
}

func TestDeleteNetworkRemovesEndpoints(t *testing.T) {
	db := openT(t, t.TempDir())
	// "n1" is a prefix of "n10": its endpoints must stay.
	if err := db.Update(func(tx *Tx) error {
		for _, n := range []string{"n1", "n10"} {
			if err := tx.Put(Networks, n, netRec{ID: n}); err != nil {
				return err
			}
			for i := range 3 {
				if err := tx.Put(Endpoints, EndpointKey(n, fmt.Sprint("e", i)), i); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.DeleteNetwork("n1") }); err != nil {
		t.Fatal(err)
	}
	all, err := db.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	var nets, eps []string
	for k := range all[Networks] {
		nets = append(nets, k)
	}
	for k := range all[Endpoints] {
		eps = append(eps, k)
	}
	if len(nets) != 1 || nets[0] != "n10" || len(eps) != 3 {
		t.Fatalf("after DeleteNetwork(n1): networks %v, endpoints %v; want n10 and its 3", nets, eps)
	}
	var ids []string
	if err := db.View(func(tx *Tx) error {
		return tx.ForEachEndpoint("n10", func(id string, raw json.RawMessage) error {
			ids = append(ids, id+"="+string(raw))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"e0=0", "e1=1", "e2=2"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ForEachEndpoint(n10) = %v, want %v", ids, want)
	}
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.Put(Networks, "n1", netRec{ID: "n1", VNI: 7}) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openT(t, dir)
	all, err := db.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(all[Networks]["n1"]); got != `{"id":"n1","vni":7}` {
		t.Errorf("after reopen: networks/n1 = %q", got)
	}
}

func TestKeysValidated(t *testing.T) {
	db := openT(t, t.TempDir())
	cases := []struct {
		b    Bucket
		key  string
		want string
	}{
		{Networks, "", "networks key: empty"},
		{Networks, "a/b", `networks key: "a/b" contains "/"`},
		{Nodes, "", "nodes key: empty"},
		{Endpoints, "n1", "must be network ID + \"/\" + endpoint ID"},
		{Endpoints, "n1/", "must be network ID"},
		{Endpoints, "/e1", "must be network ID"},
		{Endpoints, "n1/e1/x", "must be network ID"},
		{Bucket("vni"), "1", `bucket "vni": unknown, must be one of [networks endpoints nodes vnis pools leases]`},
	}
	for _, c := range cases {
		err := db.Update(func(tx *Tx) error { return tx.Put(c.b, c.key, 1) })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Put(%s, %q) = %v, want an error containing %q", c.b, c.key, err, c.want)
		}
	}
	err := db.Update(func(tx *Tx) error { return tx.DeleteNetwork("") })
	if err == nil {
		t.Error("DeleteNetwork(\"\") succeeded")
	}
	all, err := db.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	for b, recs := range all {
		if len(recs) != 0 {
			t.Errorf("bucket %s holds %v after refused puts", b, recs)
		}
	}
	if err := db.View(func(tx *Tx) error { return tx.Put(Networks, "n1", 1) }); err == nil {
		t.Error("Put in a View transaction succeeded")
	}
}

func TestNewerVersionRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(metaBucket).Put(keyVersion, []byte("3"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(dir)
	want := "is of version 3, newer than this plugin's 2; run a newer plugin"
	if !errors.Is(err, ErrNewerVersion) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open of a version 3 store = %v, want ErrNewerVersion saying %q", err, want)
	}
}

// boltFile writes a bolt file at dir/state.db with fn's content.
func boltFile(t *testing.T, dir string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	b, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRefused(t *testing.T) {
	cases := []struct {
		name  string
		write func(t *testing.T, dir string)
		want  string
	}{
		{"garbage", func(t *testing.T, dir string) {
			junk := []byte(strings.Repeat("this is not a bolt file\n", 1000))
			if err := os.WriteFile(filepath.Join(dir, FileName), junk, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is corrupt: not a bolt database"},
		{"short garbage", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is corrupt: not a bolt database"},
		{"no meta bucket", func(t *testing.T, dir string) {
			boltFile(t, dir, func(tx *bolt.Tx) error {
				_, err := tx.CreateBucket([]byte(Networks))
				return err
			})
		}, "is corrupt: bad meta: no meta bucket"},
		{"no version", func(t *testing.T, dir string) {
			boltFile(t, dir, func(tx *bolt.Tx) error {
				_, err := tx.CreateBucket(metaBucket)
				return err
			})
		}, "is corrupt: bad meta: no version"},
		{"bad version", func(t *testing.T, dir string) {
			boltFile(t, dir, func(tx *bolt.Tx) error {
				m, err := tx.CreateBucket(metaBucket)
				if err != nil {
					return err
				}
				return m.Put(keyVersion, []byte("two"))
			})
		}, `is corrupt: bad meta: version "two"`},
		{"version 1", func(t *testing.T, dir string) {
			boltFile(t, dir, func(tx *bolt.Tx) error {
				m, err := tx.CreateBucket(metaBucket)
				if err != nil {
					return err
				}
				return m.Put(keyVersion, []byte("1"))
			})
		}, `is corrupt: bad meta: version "1"`},
		{"missing bucket", func(t *testing.T, dir string) {
			boltFile(t, dir, func(tx *bolt.Tx) error {
				if err := initStore(tx); err != nil {
					return err
				}
				return tx.DeleteBucket([]byte(Nodes))
			})
		}, `is corrupt: bad meta: bucket "nodes" missing`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.write(t, dir)
			before, err := os.ReadFile(filepath.Join(dir, FileName))
			if err != nil {
				t.Fatal(err)
			}
			db, err := Open(dir, WithLockTimeout(100*time.Millisecond))
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) ||
				!strings.Contains(err.Error(), "move it away") {
				t.Fatalf("Open = %v; want ErrCorrupt containing %q and what to do", err, c.want)
			}
			t.Log(err)
			after, err := os.ReadFile(filepath.Join(dir, FileName))
			if err != nil || string(after) != string(before) {
				t.Errorf("the refused file changed (%v)", err)
			}
		})
	}
}

func TestCorruptRecordRefused(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(Endpoints)).Put([]byte("n1/e1"), []byte(`{"mac":`))
	}); err != nil {
		t.Fatal(err)
	}
	want := `is corrupt: record endpoints/"n1/e1" is not valid JSON`
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s = %v; want ErrCorrupt containing %q", what, err, want)
		}
	}
	_, err := db.LoadAll()
	check("LoadAll", err)
	check("Get", db.View(func(tx *Tx) error {
		var v any
		_, err := tx.Get(Endpoints, "n1/e1", &v)
		return err
	}))
	loadErr := db.Load(func(b Bucket, key string, raw json.RawMessage) error {
		var v map[string]any
		return json.Unmarshal(raw, &v)
	})
	var syntax *json.SyntaxError
	if !errors.Is(loadErr, ErrCorrupt) || !errors.As(loadErr, &syntax) ||
		!strings.Contains(loadErr.Error(), `is corrupt: record endpoints/"n1/e1" does not decode (unexpected end of JSON input); move it away`) {
		t.Errorf("Load = %v; want ErrCorrupt naming the record, wrapping the decoder's error", loadErr)
	}
	check("ForEach", db.View(func(tx *Tx) error {
		return tx.ForEach(Endpoints, func(string, json.RawMessage) error { return nil })
	}))
	check("ForEachEndpoint", db.View(func(tx *Tx) error {
		return tx.ForEachEndpoint("n1", func(string, json.RawMessage) error { return nil })
	}))
}

func TestLockHeldByAnotherOpen(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir)
	start := time.Now()
	db, err := Open(dir, WithLockTimeout(200*time.Millisecond))
	took := time.Since(start)
	if err == nil {
		db.Close()
		t.Fatal("second Open of a held store succeeded")
	}
	want := fmt.Sprintf("is in use by another process (pid %d)", os.Getpid())
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second Open = %v; want ErrInUse containing %q", err, want)
	}
	if took > 5*time.Second {
		t.Errorf("second Open took %v with a 200ms lock timeout", took)
	}
	if _, err := Open(dir, WithLockTimeout(0)); err == nil || !strings.Contains(err.Error(), "lock timeout 0s: must be positive") {
		t.Errorf("Open with lock timeout 0 = %v", err)
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	openT(t, dir)
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, FileName): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
}

func TestSplitEndpointKey(t *testing.T) {
	n, e, ok := SplitEndpointKey(EndpointKey("net", "ep"))
	if !ok || n != "net" || e != "ep" {
		t.Errorf("SplitEndpointKey(EndpointKey) = %q, %q, %v", n, e, ok)
	}
	for _, k := range []string{"", "net", "net/", "/ep", "a/b/c"} {
		if _, _, ok := SplitEndpointKey(k); ok {
			t.Errorf("SplitEndpointKey(%q) ok", k)
		}
	}
}

func TestLoadOrder(t *testing.T) {
	db := openT(t, t.TempDir())
	if err := db.Update(func(tx *Tx) error {
		for _, p := range []struct {
			b   Bucket
			key string
		}{{Nodes, "198.18.0.9"}, {Endpoints, "b/e2"}, {Endpoints, "a/e1"}, {Networks, "b"}, {Networks, "a"}} {
			if err := tx.Put(p.b, p.key, p.key); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := db.Load(func(b Bucket, key string, raw json.RawMessage) error {
		got = append(got, string(b)+":"+key+"="+string(raw))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{`networks:a="a"`, `networks:b="b"`, `endpoints:a/e1="a/e1"`, `endpoints:b/e2="b/e2"`, `nodes:198.18.0.9="198.18.0.9"`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load order = %v, want %v", got, want)
	}
}

// A version 2 store written before the vnis bucket existed opens: Open adds
// the bucket, keeps every record, and the next Open finds nothing to add.
func TestOpenAddsVNIsBucket(t *testing.T) {
	dir := t.TempDir()
	boltFile(t, dir, func(tx *bolt.Tx) error {
		if err := initStore(tx); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(Networks)).Put([]byte("n1"), []byte(`{"id":"n1"}`)); err != nil {
			return err
		}
		return tx.DeleteBucket([]byte(VNIs))
	})
	db := openT(t, dir)
	if err := db.Update(func(tx *Tx) error { return tx.Put(VNIs, "n1", map[string]int{"vni": 1000}) }); err != nil {
		t.Fatal(err)
	}
	all, err := db.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	if string(all[Networks]["n1"]) != `{"id":"n1"}` || string(all[VNIs]["n1"]) != `{"vni":1000}` {
		t.Fatalf("records: %q", all)
	}
	db.Close()
	before, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	openT(t, dir).Close()
	if after, _ := os.ReadFile(filepath.Join(dir, FileName)); string(after) != string(before) {
		t.Fatal("a second Open wrote to a store that had every bucket")
	}
}
