// Package reapgroup names the link groups (IFLA_GROUP) in which package
// linuxhost puts the links it has let go of and is about to delete: First
// to First+Count-1 (0x64767072, "dvpr", and the 63 after it). An operator
// sees them in `ip link` as the group of a link that is being deleted; the
// tests that watch the plugin's deletions recognise them here.
package reapgroup

// The deletion groups: Count groups from First.
const (
	First = 0x64767072 // "dvpr"
	Count = 64
)

// Contains reports whether group is one of the deletion groups.
func Contains(group uint32) bool { return group >= First && group < First+Count }
