package fabric

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"golang.org/x/sys/unix"
)

// DefaultParentDir is the directory parent-file options are read from when
// the daemon does not name another (its -parent-dir flag).
const DefaultParentDir = "/etc/docker-vxlan-plugin"

// MaxParentFileBytes is the largest parent-file read; a larger one is
// refused without being read.
const MaxParentFileBytes = 64 << 10

// parentFileContent is what a parent-file may hold, for the errors about
// its content.
const parentFileContent = `a [macvlan] table with parent = "name", "name, name" or ["name", "name"]; or an interface name on the first line`

// parentFileRules is the accepted value of the parent-file option.
var parentFileRules = fmt.Sprintf("a file in the plugin's parent directory (default %s): a name relative to it, or an absolute path inside it, no '..'; "+
	"a regular file of at most %d KiB, owned by root, writable by no one else, with one hard link; "+
	"symbolic links must stay inside the directory", DefaultParentDir, MaxParentFileBytes>>10)

// The problems a parent-file's content can have. Every error about the
// content is one of these, with at most a line number: none quotes a byte
// of the file, which may be any file the caller names.
const (
	problemNotTOML       = "not TOML, and its first line is not an interface name list"
	problemNoTable       = "has no [macvlan] table"
	problemNotTable      = "macvlan is not a table"
	problemNoKey         = "key macvlan.parent is missing"
	problemKeyType       = "key macvlan.parent: want a string or a list of strings"
	problemItemType      = "key macvlan.parent: an item of the list is not a string"
	problemBadNames      = "key macvlan.parent: not a list of valid interface names (each 1 to 15 bytes, printable, without '/', ':', '%' or white space)"
	problemBadFirstLine  = "not a list of valid interface names (each 1 to 15 bytes, printable, without '/', ':', '%' or white space)"
	problemNotUTF8       = "not UTF-8 text"
	problemUnexpectedKey = "not of the expected form"
)

// parentFileProblems lists every content problem, for the tests.
var parentFileProblems = []string{problemNotTOML, problemNoTable, problemNotTable, problemNoKey, problemKeyType,
	problemItemType, problemBadNames, problemBadFirstLine, problemNotUTF8, problemUnexpectedKey}

// parentFileError is the error about parent-file name: the option, the name
// as the user gave it, and the rule it breaks.
func parentFileError(name, problem, accepted string) error {
	return &OptionError{Option: "parent-file", Value: name, Problem: problem, Accepted: accepted}
}

// checkParentFileName checks a parent-file value without touching the
// file system: not empty, no NUL byte and no ".." element, so it cannot
// climb out of the parent directory on any host.
func checkParentFileName(v string) error {
	switch {
	case v == "":
		return errors.New("an empty path")
	case len(v) > unix.PathMax:
		return errors.New("a path longer than " + strconv.Itoa(unix.PathMax) + " bytes")
	case strings.IndexByte(v, 0) >= 0:
		return errors.New("a path with a NUL byte")
	}
	for _, e := range strings.Split(v, "/") {
		if e == ".." {
			return errors.New("a path with a '..' element: the file must lie in the plugin's parent directory")
		}
	}
	return nil
}

// CheckParentDir checks a parent directory before any network names a
// file in it: it must be an absolute path. It returns the path cleaned.
func CheckParentDir(dir string) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("parent directory %q: not an absolute path", dir)
	}
	return filepath.Clean(dir), nil
}

// readParentFile reads the parent candidates of parent-file name from the
// directory dir, which name lies in: a name relative to dir, or an
// absolute path inside it. The file and dir must be owned by owner (root,
// but for tests) and writable by no one else, and the file must be a
// regular file with one hard link and of at most MaxParentFileBytes.
//
// The file is resolved with openat2 RESOLVE_BENEATH on dir, so neither
// ".." nor a symbolic link leads out of dir (where the kernel has no
// openat2, each element is opened with O_NOFOLLOW instead, so no symbolic
// link is followed at all). It is first opened with O_PATH and checked, so
// a FIFO or a device is never opened for reading, then opened O_NONBLOCK
// and checked again on the open descriptor, so a file swapped in between
// is noticed. Errors name the option and the rule broken and never quote
// the file's content.
func readParentFile(dir string, owner uint32, name string) ([]string, error) {
	b, problem := readBeneath(dir, owner, name)
	if problem != "" {
		return nil, parentFileError(name, problem, parentFileRules)
	}
	return parseParentFile(name, b)
}

// readBeneath reads name from dir by readParentFile's rules, or returns the
// rule it breaks.
func readBeneath(dir string, owner uint32, name string) ([]byte, string) {
	if err := checkParentFileName(name); err != nil {
		return nil, err.Error()
	}
	rel := filepath.Clean(name)
	if rel == dir {
		rel = "."
	} else if filepath.IsAbs(rel) {
		prefix := strings.TrimSuffix(dir, "/") + "/"
		if !strings.HasPrefix(rel, prefix) {
			return nil, "outside the parent directory " + dir
		}
		rel = strings.TrimPrefix(rel, prefix)
	}
	dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, "the parent directory " + dir + " does not exist on this host"
		}
		return nil, "the parent directory " + dir + " cannot be opened: " + errnoText(err)
	}
	defer unix.Close(dirfd)
	var st unix.Stat_t
	if err := unix.Fstat(dirfd, &st); err != nil {
		return nil, "the parent directory " + dir + " cannot be read: " + err.Error()
	}
	if st.Uid != owner || st.Mode&0o022 != 0 {
		return nil, "the parent directory " + dir + " must be owned by root and writable by no one else"
	}

	// Look first, through an O_PATH descriptor that reads nothing.
	pfd, err := openBeneath(dirfd, rel, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return nil, openProblem(err, dir)
	}
	var first unix.Stat_t
	err = unix.Fstat(pfd, &first)
	unix.Close(pfd)
	if err != nil {
		return nil, "cannot be read: " + err.Error()
	}
	if p := fileProblem(&first, owner); p != "" {
		return nil, p
	}

	// Then read, checking the descriptor that is read.
	fd, err := openBeneath(dirfd, rel, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return nil, openProblem(err, dir)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return nil, "cannot be read: " + err.Error()
	}
	if p := fileProblem(&now, owner); p != "" {
		return nil, p
	}
	if now.Dev != first.Dev || now.Ino != first.Ino {
		return nil, "changed while it was being opened"
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxParentFileBytes+1))
	if err != nil {
		return nil, "cannot be read: " + errnoText(err)
	}
	if len(b) > MaxParentFileBytes {
		return nil, fmt.Sprintf("larger than %d bytes", MaxParentFileBytes)
	}
	return b, ""
}

// fileProblem checks the status of an opened parent-file.
func fileProblem(st *unix.Stat_t, owner uint32) string {
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return "a symbolic link (refused: this kernel has no openat2 to keep links inside the parent directory)"
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return "not a regular file"
	case st.Size > MaxParentFileBytes:
		return fmt.Sprintf("larger than %d bytes", MaxParentFileBytes)
	case st.Uid != owner:
		return "not owned by root"
	case st.Mode&0o022 != 0:
		return "writable by group or others"
	case st.Nlink != 1:
		return "has more than one hard link"
	}
	return ""
}

// openProblem says why an open failed, in terms of the rules.
func openProblem(err error, dir string) string {
	switch {
	case errors.Is(err, unix.ENOENT):
		return "does not exist in the parent directory " + dir
	case errors.Is(err, unix.EXDEV):
		return "leads outside the parent directory " + dir + " (through a symbolic link or '..')"
	case errors.Is(err, unix.ELOOP):
		return "is or passes through a symbolic link that is not followed"
	case errors.Is(err, unix.ENOTDIR):
		return "has an element that is not a directory"
	}
	return "cannot be opened: " + errnoText(err)
}

// errnoText is the errno of err alone, without the paths an *os.PathError
// would add.
func errnoText(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return "I/O error"
}

// openat2 is unix.Openat2; tests replace it to take the path of kernels
// without it.
var openat2 = unix.Openat2

// openBeneath opens rel, relative to dirfd, so that the path cannot leave
// the directory.
func openBeneath(dirfd int, rel string, flags int) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	for range 8 {
		fd, err := openat2(dirfd, rel, how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.ENOSYS):
			return openEachElement(dirfd, rel, flags)
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue // interrupted, or raced with a rename in the directory
		default:
			return -1, err
		}
	}
	return -1, unix.EAGAIN
}

// openEachElement opens rel one element at a time with O_NOFOLLOW, for
// kernels without openat2: no symbolic link is followed, and rel has no
// ".." (checkParentFileName).
func openEachElement(dirfd int, rel string, flags int) (int, error) {
	elems := strings.FieldsFunc(rel, func(r rune) bool { return r == '/' })
	cur := dirfd
	defer func() {
		if cur != dirfd {
			unix.Close(cur)
		}
	}()
	for i, e := range elems {
		if e == "." {
			continue
		}
		if e == ".." {
			return -1, unix.EXDEV
		}
		fl := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(elems)-1 {
			fl = flags | unix.O_NOFOLLOW
		}
		fd, err := unix.Openat(cur, e, fl, 0)
		if err != nil {
			return -1, err
		}
		if i == len(elems)-1 {
			return fd, nil
		}
		if cur != dirfd {
			unix.Close(cur)
		}
		cur = fd
	}
	// Only "." elements: the directory itself, which is not a regular file.
	return unix.Openat(dirfd, ".", flags, 0)
}

// parseParentFile reads the parent candidates from b, the content of the
// parent-file the user named name: a TOML file with a [macvlan] table whose
// parent is a name, a comma-separated list, or a TOML array of names:
//
//	[macvlan]
//	parent = "eth1"               # or "bond0, eth1", or ["bond0", "eth1"]
//
// A file that is not TOML at all but holds a name list on its first
// non-empty line that is not a comment (`echo eth0.30 > vlan30.conf`) is
// read as that list. Errors say where (line, key) and what was expected,
// never what was found.
func parseParentFile(name string, b []byte) ([]string, error) {
	bad := func(line int, problem string) error {
		if line > 0 {
			problem = fmt.Sprintf("line %d: %s", line, problem)
		}
		return parentFileError(name, problem, parentFileContent)
	}
	var doc map[string]any
	meta, err := toml.Decode(string(b), &doc)
	if err != nil {
		text := string(b)
		if n, line := firstLine(text); line != "" && !strings.ContainsAny(text, "=[") {
			names, err := ParseNameList(line)
			if err != nil {
				return nil, bad(n, problemBadFirstLine)
			}
			return names, nil
		}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if strings.Contains(pe.Message, "UTF-8") {
				return nil, bad(pe.Position.Line, problemNotUTF8)
			}
			return nil, bad(pe.Position.Line, problemNotTOML)
		}
		return nil, bad(0, problemUnexpectedKey)
	}
	if !meta.IsDefined("macvlan") {
		return nil, bad(0, problemNoTable)
	}
	table, ok := doc["macvlan"].(map[string]any)
	if !ok {
		return nil, bad(0, problemNotTable)
	}
	raw, ok := table["parent"]
	if !ok {
		return nil, bad(0, problemNoKey)
	}
	var list string
	switch v := raw.(type) {
	case string:
		list = v
	case []any:
		parts := make([]string, 0, len(v))
		for _, p := range v {
			s, ok := p.(string)
			if !ok {
				return nil, bad(0, problemItemType)
			}
			parts = append(parts, s)
		}
		list = strings.Join(parts, ",")
	default:
		return nil, bad(0, problemKeyType)
	}
	names, err := ParseNameList(list)
	if err != nil {
		return nil, bad(0, problemBadNames)
	}
	return names, nil
}

// firstLine returns the first line of s that is neither blank nor a
// comment, trimmed, with its line number.
func firstLine(s string) (int, string) {
	for i, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return i + 1, l
		}
	}
	return 0, ""
}
