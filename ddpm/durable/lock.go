package durable

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// LockInfo is the content of a lock file: who holds it and since when.
type LockInfo struct {
	Host string    `json:"host"`
	PID  int       `json:"pid"`
	Time time.Time `json:"time"`
}

// Equal reports whether two lock records are the same lock.
func (li LockInfo) Equal(o LockInfo) bool {
	return li.Host == o.Host && li.PID == o.PID && li.Time.Equal(o.Time)
}

func (li LockInfo) String() string {
	return fmt.Sprintf("pid %d on %s since %s", li.PID, li.Host, li.Time.Format(time.RFC3339))
}

// IsStale reports whether the lock was left by a process that no longer exists. Only locks
// taken on host (this machine) can be checked; locks from other hosts are assumed live.
func (li LockInfo) IsStale(host string) bool {
	if li.Host != host || li.PID <= 0 {
		return false
	}
	err := syscall.Kill(li.PID, 0)
	return errors.Is(err, syscall.ESRCH) // EPERM: it exists but belongs to another user
}

// Lock is a held lock file. Release it with Unlock.
type Lock struct {
	Path string
	Info LockInfo
	// Stale is the lock this process found left behind by a dead process and replaced,
	// or nil. The caller logs it.
	Stale *LockInfo

	raw []byte
}

// AlreadyLockedError is returned by TryLock when another live process holds the lock.
type AlreadyLockedError struct {
	Name   string   // what the lock protects, for people: "run 0123456789ab"
	Path   string   // the lock file
	Holder LockInfo // zero if the lock file could not be read
}

func (e *AlreadyLockedError) Error() string {
	return fmt.Sprintf("%s is locked by %s (lock file %s; delete it if that process is gone)",
		e.Name, e.Holder, e.Path)
}

// IsAlreadyLocked reports whether err is or wraps an *AlreadyLockedError.
func IsAlreadyLocked(err error) bool {
	var e *AlreadyLockedError
	return errors.As(err, &e)
}

// TryLock takes the lock file at path without waiting; name says what it protects (for the
// error message). The file records this host, PID and time. It is safe across processes and
// hosts sharing the folder, and between goroutines of one process: of several callers at
// once exactly one succeeds.
//
// If the lock is held by a live process (on this host: signal 0 reaches its PID; on another
// host: always assumed live), TryLock returns an *AlreadyLockedError. A lock left by a dead
// process on this host is stale: TryLock replaces it and reports it in Lock.Stale.
//
// The lock file is created complete and exclusively: its content is written to a temporary
// file which is then hard-linked to path, and link(2) fails if the name exists (an O_EXCL
// create would let other processes read a half-written lock). Removing a stale lock is
// serialised with flock(2) on the lock's folder, so two processes that both found the same
// stale lock cannot remove each other's fresh one.
func TryLock(path, name string) (*Lock, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l := &Lock{Path: path, Info: LockInfo{Host: host, PID: os.Getpid(), Time: time.Now().UTC()}}
	if l.raw, err = json.Marshal(l.Info); err != nil {
		return nil, err
	}
	l.raw = append(l.raw, '\n')

	// Two rounds: the second follows the removal of a stale lock.
	for range 2 {
		err := l.create()
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		stale, err := removeIfStale(path, host)
		if err != nil {
			return nil, err
		}
		if stale == nil {
			break // live, or raced with a process that has just released and retaken it
		}
		l.Stale = stale
	}
	holder, _ := ReadLock(path)
	return nil, &AlreadyLockedError{Name: name, Path: path, Holder: holder}
}

// create links a complete temporary lock file to the lock path.
func (l *Lock) create() error {
	dir := filepath.Dir(l.Path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(l.Path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(l.raw); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp, l.Path); err != nil {
		return err // fs.ErrExist when held
	}
	return SyncDir(dir)
}

// removeIfStale removes the lock at path if it was left by a dead process on this host, and
// returns what it held; it returns nil, nil if the lock is live (or gone).
func removeIfStale(path, host string) (*LockInfo, error) {
	info, err := ReadLock(path)
	if err != nil || !info.IsStale(host) {
		// Unreadable locks are left alone: link(2) only ever makes complete ones, so an
		// unreadable lock was made by hand or by a filesystem without link atomicity.
		return nil, nil
	}
	unlock, err := flockDir(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	defer unlock()
	// Under the folder lock, check that the lock file is still the stale one: another
	// process may have removed it and taken the lock in the meantime.
	again, err := ReadLock(path)
	if err != nil || !again.Equal(info) {
		return nil, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lock %s: remove stale lock: %w", path, err)
	}
	return &info, nil
}

// BreakStale removes the lock at path if it was left by a dead process on this host (as
// TryLock would before taking it) and returns what it held; nil, nil if the lock is live,
// unreadable or absent. `runner verify` uses it to repair a store.
func BreakStale(path string) (*LockInfo, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	stale, err := removeIfStale(path, host)
	if stale != nil && err == nil {
		err = SyncDir(filepath.Dir(path))
	}
	return stale, err
}

// flockDir takes an exclusive flock on a folder and returns the function that releases it.
func flockDir(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(d.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("flock %s: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
		_ = d.Close()
	}, nil
}

// ReadLock returns the holder of the lock at path; errors.Is(err, fs.ErrNotExist) if it is
// not locked. The holder may be stale.
func ReadLock(path string) (LockInfo, error) {
	var info LockInfo
	data, err := os.ReadFile(path)
	if err != nil {
		return info, err // *PathError names the file
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// Unlock releases the lock. It removes the lock file only if it is still this lock's, so a
// lock broken by hand and taken by another process is left alone.
func (l *Lock) Unlock() error {
	cur, err := ReadLock(l.Path)
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.Path, err)
	}
	if !cur.Equal(l.Info) {
		return fmt.Errorf("unlock %s: the lock now belongs to %s", l.Path, cur)
	}
	if err := os.Remove(l.Path); err != nil {
		return fmt.Errorf("unlock %s: %w", l.Path, err)
	}
	return SyncDir(filepath.Dir(l.Path))
}
