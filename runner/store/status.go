package store

import (
	"fmt"
	"os"
	"time"
)

// State is the lifecycle state of a run, as recorded in status.json.
type State string

// The states of a run. A run starts pending, is running while a process holds its lock,
// and ends done, failed or interrupted (a checkpoint was written; it can be resumed).
const (
	Pending     State = "pending"
	Running     State = "running"
	Done        State = "done"
	Failed      State = "failed"
	Interrupted State = "interrupted"
)

// States lists every state in lifecycle order.
var States = []State{Pending, Running, Done, Failed, Interrupted}

// ParseState parses a state name, e.g. from `runner list --status failed`.
func ParseState(s string) (State, error) {
	for _, st := range States {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown run state %q (want pending, running, done, failed or interrupted)", s)
}

// Final reports whether the state is one a process leaves behind when it ends normally.
func (s State) Final() bool { return s == Done || s == Failed || s == Interrupted }

// Status is the content of status.json (see docs/ARCHITECTURE.md).
type Status struct {
	State       State     `json:"state"`
	Reason      string    `json:"reason,omitempty"`    // why a run failed or was interrupted
	ExitCode    int       `json:"exit_code,omitempty"` // of the child process, when it failed
	Signal      string    `json:"signal,omitempty"`    // that killed the child, e.g. "killed"
	Attempts    int       `json:"attempts"`            // processes that have started this run, ever
	Host        string    `json:"host,omitempty"`
	PID         int       `json:"pid,omitempty"`
	Started     time.Time `json:"started,omitzero"`
	Finished    time.Time `json:"finished,omitzero"`
	WallSeconds float64   `json:"wall_seconds,omitempty"`
	Epoch       int       `json:"epoch,omitempty"` // epochs completed
	Epochs      int       `json:"epochs,omitempty"`
	LogTail     string    `json:"log_tail,omitempty"` // last lines of stderr, for failed runs
}

// ReadStatus reads a run's status.json. A missing run gives an error wrapping ErrNoRun.
func (s *Store) ReadStatus(hash string) (Status, error) {
	var st Status
	if err := ReadJSON(s.Path(hash, StatusFile), &st); err != nil {
		return Status{}, s.notExist(hash, err)
	}
	return st, nil
}

// WriteStatus replaces a run's status.json atomically.
func (s *Store) WriteStatus(hash string, st Status) error {
	if _, err := ParseState(string(st.State)); err != nil {
		return fmt.Errorf("write status of %s: %w", Short(hash), err)
	}
	if !s.Exists(hash) {
		return fmt.Errorf("write status of %s: %w in %s", Short(hash), ErrNoRun, s.Root)
	}
	return WriteJSON(s.Path(hash, StatusFile), st)
}

// UpdateStatus reads status.json, applies change and writes the result back, returning it.
// It does not lock: only the process holding the run's lock (or the parent of that process,
// after it exited) writes a run's status.
func (s *Store) UpdateStatus(hash string, change func(*Status)) (Status, error) {
	st, err := s.ReadStatus(hash)
	if err != nil {
		return Status{}, err
	}
	change(&st)
	return st, s.WriteStatus(hash, st)
}

// Begin records that this process starts an attempt at the run: state running, attempts
// incremented, host, pid and start time set, and the fields of the previous attempt's
// outcome cleared. epochs is the configured number of epochs; epoch is where training
// resumes (0 for a fresh start). Call it after taking the run's lock.
func (s *Store) Begin(hash string, epoch, epochs int) (Status, error) {
	host, _ := os.Hostname()
	return s.UpdateStatus(hash, func(st *Status) {
		*st = Status{
			State:    Running,
			Attempts: st.Attempts + 1,
			Host:     host,
			PID:      os.Getpid(),
			Started:  time.Now().UTC(),
			Epoch:    epoch,
			Epochs:   epochs,
		}
	})
}

// Finish records the end of the attempt begun with Begin: the final state, the reason
// (empty for done), the finish time and the wall time since Started.
func (s *Store) Finish(hash string, state State, reason string) (Status, error) {
	if !state.Final() {
		return Status{}, fmt.Errorf("finish run %s: %q is not a final state", Short(hash), state)
	}
	return s.UpdateStatus(hash, func(st *Status) {
		st.State = state
		st.Reason = reason
		st.Finished = time.Now().UTC()
		if !st.Started.IsZero() {
			st.WallSeconds = st.Finished.Sub(st.Started).Seconds()
		}
	})
}
