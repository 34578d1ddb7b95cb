package rtlink

import "os"

// SetWriteFile replaces how sysctls are written, for the tests of the
// read-only /proc/sys case; it returns a function that puts it back.
func SetWriteFile(f func(string, []byte, os.FileMode) error) (restore func()) {
	writeFile = f
	return func() { writeFile = os.WriteFile }
}
