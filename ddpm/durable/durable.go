// Package durable writes files and folders so that a reader, or a process started after a
// crash or a power cut, sees either the old content or the complete new one, never a part;
// and it provides the one lock file type of the project (see Lock).
//
// Every write follows the same steps (restic's atomic write): a temporary file in the same
// folder, the data written and its byte count checked, fsync, close, rename over the target,
// fsync of the folder so that the rename itself survives a crash. On any error the temporary
// file is removed and the target is left as it was. Errors name the target file.
//
// Why here: the design card fixes the top level, and Go's internal rule keeps ddpm/internal
// out of reach of runner. Both ddpm (checkpoints, downloads, pictures, the classifier cache)
// and runner (the run store, exports) write files, and runner already imports ddpm while ddpm
// never imports runner, so the shared helper is an exported package under ddpm. It imports
// only the standard library and golang.org/x/sys, never gotch, so importing it does not pull
// libtorch into runner/store.
package durable

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// WriteFile writes data to path durably and atomically, with permissions perm: a reader sees
// the old file or all of data. On error path is unchanged and no temporary file is left.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		n, err := w.Write(data)
		if err == nil && n != len(data) {
			err = fmt.Errorf("short write: %d of %d bytes: %w", n, len(data), io.ErrShortWrite)
		}
		return err
	})
}

// Write is the streaming form of WriteFile: write receives the temporary file and writes the
// content; if it returns an error, nothing is renamed and that error is returned (wrapped,
// naming path). The bytes on disk are counted against the bytes write passed in before the
// file is synced, so a short write is never renamed into place.
func Write(path string, perm os.FileMode, write func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close() // may already be closed; the first error is the one to report
			_ = os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	cw := &countingWriter{w: f}
	if err := write(cw); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != cw.n {
		return fmt.Errorf("short write: %d of %d bytes on disk: %w", fi.Size(), cw.n, io.ErrShortWrite)
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteDir writes a whole folder durably and atomically: fill writes the files into a
// temporary folder beside dir (the only argument it gets, so libraries that write by file
// name, such as gotch's SaveMultiNew, can use it); every file in it and the folder itself are
// then synced, and the folder is switched in at dir. An existing dir is replaced in one step
// (renameat2 RENAME_EXCHANGE, then the old content is removed), so a reader sees the old
// folder or the new one, never none. On error dir is unchanged and the temporary folder is
// removed.
func WriteDir(dir string, fill func(tmp string) error) error {
	return writeDir(dir, fill, true)
}

// CreateDir is WriteDir for a folder that is written once: if dir already exists (another
// process created it first), CreateDir leaves it as it is, removes its own temporary folder
// and returns an error for which errors.Is(err, fs.ErrExist) holds.
func CreateDir(dir string, fill func(tmp string) error) error {
	return writeDir(dir, fill, false)
}

func writeDir(dir string, fill func(tmp string) error, replace bool) (err error) {
	parent := filepath.Dir(dir)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
			err = fmt.Errorf("write %s: %w", dir, err)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if err := syncTree(tmp); err != nil {
		return err
	}
	if !replace {
		// rename(2) would replace an empty folder; link-like semantics need a check first.
		// A folder created between the check and the rename is non-empty (it was assembled
		// the same way), so the rename then fails with ENOTEMPTY.
		if _, err := os.Lstat(dir); err == nil {
			return fmt.Errorf("%w", fs.ErrExist)
		}
	}
	switch err := os.Rename(tmp, dir); {
	case err == nil:
	case replace && errors.Is(err, fs.ErrExist):
		// dir exists and is not empty: swap the two names atomically; tmp then holds the
		// old content.
		if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		if err := SyncDir(parent); err != nil {
			return err
		}
		return os.RemoveAll(tmp) // the old content
	default:
		return err
	}
	return SyncDir(parent)
}

// syncTree fsyncs every regular file and folder under root, root last.
func syncTree(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			dirs = append(dirs, path)
			return nil
		case d.Type().IsRegular():
			return SyncFile(path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := SyncDir(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// SyncFile fsyncs a file written by other code (for example a C library that takes a file
// name), so that its content is on disk before it is renamed or recorded.
func SyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// SyncDir fsyncs a folder, so that a create, rename or remove inside it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return d.Close()
}

// IsTemp reports whether name (a base name) is one of the temporary files or folders that
// Write, WriteFile, WriteDir and Lock create: what a crash in the middle of a write leaves
// behind. Such leftovers are never the content of the file they were meant to become, and
// may be removed by whoever cleans the folder.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name[1:], ".tmp-")
}

// CheckSpace returns an error wrapping syscall.ENOSPC, naming path, if the file system that
// holds dir has fewer than need bytes free for unprivileged writers. Writers that cannot report
// a full disk themselves call it first: libtorch's serializer aborts the process when a write
// fails, where a Go write returns ENOSPC.
func CheckSpace(dir, path string, need int64) error {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return nil // unknown: let the write itself find out
	}
	if free := int64(fs.Bavail) * int64(fs.Bsize); free < need {
		return fmt.Errorf("write %s: needs about %d bytes, %s has %d free: %w", path, need, dir, free, syscall.ENOSPC)
	}
	return nil
}
