package vxlan

// Compare lists the settings in which have, a link's Config as Get reads
// it, differs from want, by the rules Ensure compares with (Port 0 means
// 4789; fields the kernel derives when unset are compared only when want
// sets them). It changes nothing; an empty list means Ensure would accept
// the link as it is.
func Compare(want, have Config) []Diff {
	return diff(&want, &have)
}
