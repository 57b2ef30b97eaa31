package store

import (
	"fmt"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// LockInfo is the content of a run's lock file: who holds it and since when.
type LockInfo = durable.LockInfo

// AlreadyLockedError is returned by Store.Lock when another live process holds the lock.
type AlreadyLockedError = durable.AlreadyLockedError

// IsAlreadyLocked reports whether err is or wraps an *AlreadyLockedError.
func IsAlreadyLocked(err error) bool { return durable.IsAlreadyLocked(err) }

// Lock is a held run lock. Release it with Unlock.
type Lock struct {
	Hash string
	*durable.Lock
}

// Lock takes the run's lock, <run>/lock, with durable.TryLock: it records this host, PID
// and time, and of several callers at once (processes, hosts sharing the store, goroutines)
// exactly one succeeds.
//
// If the lock is held by a live process, Lock returns an *AlreadyLockedError naming the run.
// A lock left by a dead process on this host is stale: Lock replaces it and reports it in
// Lock.Stale.
func (s *Store) Lock(hash string) (*Lock, error) {
	if err := CheckHash(hash); err != nil {
		return nil, err
	}
	if !s.Exists(hash) {
		return nil, fmt.Errorf("lock run %s: %w in %s", Short(hash), ErrNoRun, s.Root)
	}
	l, err := durable.TryLock(s.Path(hash, LockFile), "run "+Short(hash))
	if err != nil {
		return nil, err
	}
	return &Lock{Hash: hash, Lock: l}, nil
}

// ReadLock returns the holder of a run's lock; errors.Is(err, fs.ErrNotExist) if the run
// is not locked. The holder may be stale.
func (s *Store) ReadLock(hash string) (LockInfo, error) {
	return durable.ReadLock(s.Path(hash, LockFile))
}
