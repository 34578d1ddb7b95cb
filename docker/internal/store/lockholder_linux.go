package store

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockHolder returns the pid of the process holding a lock on the file at
// path, read from /proc/locks, or 0 if it cannot tell.
func lockHolder(path string) int {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	// /proc/locks names a file as major:minor:inode, the device numbers in
	// hex, e.g. "1: FLOCK  ADVISORY  WRITE 1234 fe:00:9979374 0 EOF".
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// A waiting lock's line has "->" after the number; skip those.
		if len(fields) < 6 || fields[1] == "->" || fields[5] != id {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil {
			return pid
		}
	}
	return 0
}
