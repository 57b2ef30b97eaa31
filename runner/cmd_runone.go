package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/executor"
	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// runOne is the hidden child command that executes one run. It is the only command that
// trains: each run gets its own process, so a libtorch crash (gotch's Must* ops end the
// process) fails that run only. Exit codes: 0 done, 1 failed, 3 interrupted, 4 locked by
// another process or already done (skipped; status.json untouched).
func runOne(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "_run-one")
	root := storeFlag(fs)
	st, hash, err := oneRun(fs, root, args)
	if err != nil {
		return err
	}
	lock, err := st.Lock(hash)
	if err != nil {
		if store.IsAlreadyLocked(err) {
			return codedError{executor.ExitLocked, err}
		}
		return err
	}
	defer lock.Unlock()
	// The parent planned this run from a status it read earlier; another process (a second
	// sweep on the same store) may have finished it since. Never train a done run again:
	// exit as a skipped run, which leaves status.json as it is.
	if status, err := st.ReadStatus(hash); err == nil && status.State == store.Done {
		return codedError{executor.ExitLocked, fmt.Errorf("run %s is already done (by pid %d on %s); not training it again", store.Short(hash), status.PID, status.Host)}
	}

	cfg, err := readRunConfig(st, hash)
	if err != nil {
		return err
	}
	if _, err := st.Begin(hash, 0, cfg.Train.Epochs); err != nil {
		return err
	}
	logFile, err := os.OpenFile(st.Path(hash, "log.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	threads, _ := strconv.Atoi(os.Getenv("DDPMLAB_THREADS"))
	if cfg.Runtime.Threads > 0 {
		threads = cfg.Runtime.Threads
	}
	progress := newProgressTee(e.stdout, st.RunDir(hash), progressFileEvery) // also progress.json, for runner serve
	defer progress.Close()
	err = job.Run(ctx, job.Options{
		Store: st, Hash: hash, Progress: progress, Threads: threads, CodeVersion: codeVersion,
		Log:            zerolog.New(logFile).With().Timestamp().Str("run", store.Short(hash)).Logger(),
		CheckpointHook: checkpointPauseHook(e),
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, job.ErrInterrupted):
		return codedError{executor.ExitInterrupted, fmt.Errorf("run %s interrupted; rerun to resume from its checkpoint", store.Short(hash))}
	default:
		return codedError{executor.ExitFailed, err}
	}
}

// readRunConfig reads a run's recorded config.toml (job.ReadConfig).
func readRunConfig(st *store.Store, hash string) (config.Config, error) {
	return job.ReadConfig(st, hash)
}

// checkpointPauseEnv names a duration; when set, the child announces every step of each
// checkpoint write on stderr ("checkpoint stage …") and pauses that long after it, so that the
// fault-injection test (kill_test.go) can SIGKILL it inside the write. Unset, as always outside
// that test, checkpoints are written without a hook.
const checkpointPauseEnv = "DDPMLAB_TEST_CHECKPOINT_PAUSE"

// checkpointPauseHook reads checkpointPauseEnv; nil when it is unset or not a duration.
func checkpointPauseHook(e *env) func(stage string) {
	pause, err := time.ParseDuration(os.Getenv(checkpointPauseEnv))
	if err != nil {
		return nil
	}
	return func(stage string) {
		fmt.Fprintf(e.stderr, "checkpoint stage %s\n", stage)
		time.Sleep(pause)
	}
}
