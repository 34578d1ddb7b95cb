// Package store keeps the plugin's state on disk, one record per network,
// endpoint and swarm node, in an embedded transactional key-value store
// (go.etcd.io/bbolt). A change costs one commit of the records it touches,
// whatever the number of networks, instead of a rewrite of the whole state.
//
// # Layout
//
// The store is the file state.db (mode 0600) in the state directory (created
// with mode 0700 if missing). It holds one top-level bucket per kind of
// record and a "meta" bucket:
//
//	meta       "version" -> the schema version, decimal ASCII ("2")
//	           "migrated-v1-sha256" -> hash of the state.json it was built from
//	networks   network ID -> JSON record
//	endpoints  network ID + "/" + endpoint ID -> JSON record
//	nodes      swarm peer address -> JSON record
//	vnis       network ID -> JSON record of the VNI a swarm manager
//	           allocated or recorded for that global network
//
// Records are opaque to the store: the caller's values encoded with
// encoding/json. Endpoint keys begin with their network's ID, so the
// endpoints of one network are one prefix scan (Tx.ForEachEndpoint) and
// Tx.DeleteNetwork removes a network with all its endpoints in one commit.
// IDs are validated: non-empty and without "/". A start reads everything
// with DB.Load (the caller decodes each record in place) or DB.LoadAll
// (copies, per bucket). A new kind of record is a new Bucket constant in the
// list of buckets and a new SchemaVersion, with one exception: vnis, pools
// and leases were added to version 2 before any release left it, so Open
// adds them to a version 2 store that lacks them (one commit, at open)
// instead of calling the store corrupt; older plugins of version 2 ignore
// them.
//
// # Versioning
//
// SchemaVersion is 2: the state.json file of earlier plugins was version 1.
// Open refuses a store of a newer version ("run a newer plugin") and a file
// that is not a store of this plugin: not a bolt database, a missing or
// unreadable version, a missing bucket (other than those added, see above). LoadAll, Get and the ForEach methods
// refuse a record that is not valid JSON, and Load a record the caller's
// decoder rejects, naming its bucket and key. Every
// refusal matches ErrCorrupt or ErrNewerVersion with errors.Is and says what
// to do; the store is never reset silently.
//
// Only one process uses a store at a time: Open takes an exclusive lock on
// the file and, if another process holds it past the lock timeout
// (WithLockTimeout, DefaultLockTimeout), fails with ErrInUse naming that
// process's pid when the kernel reports it.
//
// # Migration from state.json
//
// MigrateFile turns a version 1 state.json of the same directory into
// records, once: if state.json exists and state.db is missing or holds no
// record, it calls the caller's conversion function with the old file's bytes
// inside one transaction, commits it, and only then renames state.json to
// state.json.v1.bak (or state.json.v1.bak.N if that name is taken). The
// backup is never deleted. If state.db already holds records, the store wins:
// state.json is left where it is, untouched, and MigrateFile reports that
// nothing was migrated.
//
// # Crash safety
//
// bbolt writes a commit's pages, syncs the file, then writes the meta page
// that makes them current and syncs again: a crash leaves the state of the
// last commit before it or of that commit, never a mix. Open syncs the
// directory after it creates state.db, so the new file's name survives a
// crash too. Migration commits first and renames second; a crash between the
// two leaves state.db with the records and the hash of state.json, and the
// next MigrateFile, finding the same state.json, finishes the rename instead
// of treating the two as a conflict.
package store
