package rtlink

import "golang.org/x/sys/unix"

// errNoRtnetlink is nil on Linux, which has rtnetlink.
var errNoRtnetlink error

// isNetNSFile reports whether f is a namespace file (of nsfs).
func isNetNSFile(f interface{ Fd() uintptr }) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return false, err
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// fileInode returns the inode of the file open as fd.
func fileInode(fd int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// setNetNS switches the calling thread into the network namespace open as
// fd.
func setNetNS(fd int) error { return unix.Setns(fd, unix.CLONE_NEWNET) }

// dupCloexec duplicates fd, close-on-exec.
func dupCloexec(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }
