package store

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

// LockInfo is the content of a run's lock file: who holds it and since when.
type LockInfo struct {
	Host string    `json:"host"`
	PID  int       `json:"pid"`
	Time time.Time `json:"time"`
}

func (li LockInfo) equal(o LockInfo) bool {
	return li.Host == o.Host && li.PID == o.PID && li.Time.Equal(o.Time)
}

func (li LockInfo) String() string {
	return fmt.Sprintf("pid %d on %s since %s", li.PID, li.Host, li.Time.Format(time.RFC3339))
}

// Lock is a held run lock. Release it with Unlock.
type Lock struct {
	Hash string
	Info LockInfo
	// Stale is the lock this process found left behind by a dead process and replaced,
	// or nil. The caller logs it.
	Stale *LockInfo

	path string
	raw  []byte
}

// AlreadyLockedError is returned by Store.Lock when another live process holds the lock.
type AlreadyLockedError struct {
	Hash   string
	Path   string
	Holder LockInfo // zero if the lock file could not be read
}

func (e *AlreadyLockedError) Error() string {
	return fmt.Sprintf("run %s is locked by %s (lock file %s; delete it if that process is gone)",
		Short(e.Hash), e.Holder, e.Path)
}

// IsAlreadyLocked reports whether err is or wraps an *AlreadyLockedError.
func IsAlreadyLocked(err error) bool {
	var e *AlreadyLockedError
	return errors.As(err, &e)
}

// Lock takes the run's lock, <run>/lock, which records this host, PID and time. It is safe
// across processes and hosts sharing the store, and between goroutines of one process:
// of several callers at once exactly one succeeds.
//
// If the lock is held by a live process (on this host: signal 0 reaches its PID; on
// another host: always assumed live), Lock returns an *AlreadyLockedError. A lock left by
// a dead process on this host is stale: Lock replaces it and reports it in Lock.Stale.
//
// The lock file is created complete and exclusively: its content is written to a
// temporary file which is then hard-linked to <run>/lock, and link(2) fails if the name
// exists (an O_EXCL create would let other processes read a half-written lock). Removing
// a stale lock is serialised with flock(2) on the run folder, so two processes that both
// found the same stale lock cannot remove each other's fresh one.
func (s *Store) Lock(hash string) (*Lock, error) {
	if err := CheckHash(hash); err != nil {
		return nil, err
	}
	if !s.Exists(hash) {
		return nil, fmt.Errorf("lock run %s: %w in %s", Short(hash), ErrNoRun, s.Root)
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("lock run %s: %w", Short(hash), err)
	}
	l := &Lock{
		Hash: hash,
		Info: LockInfo{Host: host, PID: os.Getpid(), Time: time.Now().UTC()},
		path: s.Path(hash, LockFile),
	}
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
			return nil, fmt.Errorf("lock run %s: %w", Short(hash), err)
		}
		stale, err := s.removeIfStale(hash, host)
		if err != nil {
			return nil, err
		}
		if stale == nil {
			break // raced with a process that has just released and retaken it
		}
		l.Stale = stale
	}
	holder, _ := readLock(l.path)
	return nil, &AlreadyLockedError{Hash: hash, Path: l.path, Holder: holder}
}

// create links a complete temporary lock file to the lock path.
func (l *Lock) create() error {
	dir := filepath.Dir(l.path)
	f, err := os.CreateTemp(dir, ".lock.tmp-*")
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
	if err := os.Link(tmp, l.path); err != nil {
		return err // fs.ErrExist when held
	}
	return syncDir(dir)
}

// removeIfStale removes the run's lock if it was left by a dead process on this host, and
// returns what it held; it returns nil, nil if the lock is live (or gone).
func (s *Store) removeIfStale(hash, host string) (*LockInfo, error) {
	path := s.Path(hash, LockFile)
	info, err := readLock(path)
	if err != nil || !isStale(info, host) {
		// Unreadable locks are left alone: assume a live holder on a filesystem that
		// lacks link(2) atomicity rather than break someone's lock.
		return nil, nil
	}

	unlock, err := flockDir(s.RunDir(hash))
	if err != nil {
		return nil, fmt.Errorf("lock run %s: %w", Short(hash), err)
	}
	defer unlock()
	// Under the folder lock, check that the lock file is still the stale one: another
	// process may have removed it and taken the run in the meantime.
	again, err := readLock(path)
	if err != nil || !again.equal(info) {
		return nil, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lock run %s: remove stale lock: %w", Short(hash), err)
	}
	return &info, nil
}

// isStale reports whether a lock was left by a process that no longer exists. Only locks
// from this host can be checked; locks from other hosts are assumed live.
func isStale(info LockInfo, host string) bool {
	if info.Host != host || info.PID <= 0 {
		return false
	}
	err := syscall.Kill(info.PID, 0)
	return errors.Is(err, syscall.ESRCH) // EPERM: it exists but belongs to another user
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

func readLock(path string) (LockInfo, error) {
	var info LockInfo
	err := ReadJSON(path, &info)
	return info, err
}

// ReadLock returns the holder of a run's lock; errors.Is(err, fs.ErrNotExist) if the run
// is not locked. The holder may be stale.
func (s *Store) ReadLock(hash string) (LockInfo, error) {
	return readLock(s.Path(hash, LockFile))
}

// Unlock releases the lock. It removes the lock file only if it is still this lock's, so a
// lock broken by hand and taken by another process is left alone.
func (l *Lock) Unlock() error {
	cur, err := readLock(l.path)
	if err != nil {
		return fmt.Errorf("unlock run %s: %w", Short(l.Hash), err)
	}
	if !cur.equal(l.Info) {
		return fmt.Errorf("unlock run %s: the lock now belongs to %s", Short(l.Hash), cur)
	}
	if err := os.Remove(l.path); err != nil {
		return fmt.Errorf("unlock run %s: %w", Short(l.Hash), err)
	}
	return syncDir(filepath.Dir(l.path))
}
