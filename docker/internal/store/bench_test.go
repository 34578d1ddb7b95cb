package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// record is a JSON record of about size bytes, the size of the plugin's
// records: ~600 bytes per network, ~200 per endpoint.
func record(id string, size int) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"ID": id, "Data": ""})
	pad := max(size-len(b), 0)
	b, _ = json.Marshal(map[string]string{"ID": id, "Data": strings.Repeat("x", pad)})
	return b
}

// fill stores networks networks (600-byte records) with endpointsPer
// endpoints each (200-byte records), in one commit.
func fill(b *testing.B, db *DB, networks, endpointsPer int) {
	b.Helper()
	if err := db.Update(func(tx *Tx) error {
		for n := range networks {
			id := fmt.Sprintf("%064x", n)
			if err := tx.Put(Networks, id, record(id, 600)); err != nil {
				return err
			}
			for e := range endpointsPer {
				eid := fmt.Sprintf("%064x", e)
				if err := tx.Put(Endpoints, EndpointKey(id, eid), record(eid, 200)); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEndpointPut is the commit of one endpoint record (what
// CreateEndpoint costs the store) with 1, 1000 and 4096 networks of two
// endpoints each stored: it should not grow with the number of networks.
func BenchmarkEndpointPut(b *testing.B) {
	for _, networks := range []int{1, 1000, 4096} {
		b.Run(fmt.Sprintf("networks=%d", networks), func(b *testing.B) {
			db, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			fill(b, db, networks, 2)
			netID := fmt.Sprintf("%064x", networks/2)
			recs := make([]json.RawMessage, 64)
			for i := range recs {
				recs[i] = record(fmt.Sprintf("%064x", 1000+i), 200)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				key := EndpointKey(netID, fmt.Sprintf("%064x", 1000+i%64))
				if err := db.Update(func(tx *Tx) error { return tx.Put(Endpoints, key, recs[i%64]) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// filledDir is a state directory with a store of 4096 networks and 8192
// endpoints, and the size of its file.
func filledDir(b *testing.B) (string, os.FileInfo) {
	b.Helper()
	dir := b.TempDir()
	db, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	fill(b, db, 4096, 2)
	db.Close()
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		b.Fatal(err)
	}
	return dir, fi
}

// BenchmarkOpenLoadAll is a restart's read of the state: Open, LoadAll and
// Close of a store with 4096 networks and 8192 endpoints.
func BenchmarkOpenLoadAll(b *testing.B) {
	dir, fi := filledDir(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		db, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		all, err := db.LoadAll()
		if err != nil {
			b.Fatal(err)
		}
		if len(all[Networks]) != 4096 || len(all[Endpoints]) != 8192 {
			b.Fatalf("loaded %d networks, %d endpoints", len(all[Networks]), len(all[Endpoints]))
		}
		db.Close()
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MB")
}

// BenchmarkOpenLoad is the same read with Load, each record decoded in
// place into a struct, as the plugin's start does.
func BenchmarkOpenLoad(b *testing.B) {
	dir, fi := filledDir(b)
	type rec struct{ ID, Data string }
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		db, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		got := map[Bucket][]rec{}
		if err := db.Load(func(bk Bucket, key string, raw json.RawMessage) error {
			var r rec
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			got[bk] = append(got[bk], r)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if len(got[Networks]) != 4096 || len(got[Endpoints]) != 8192 {
			b.Fatalf("loaded %d networks, %d endpoints", len(got[Networks]), len(got[Endpoints]))
		}
		db.Close()
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MB")
}
