package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// runList lists runs: `runner list [--sweep S] [--status STATE]`.
func runList(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "list")
	root := storeFlag(fs)
	sweepName := fs.String("sweep", "", "only the runs of this sweep (its manifest name)")
	state := fs.String("status", "", "only runs in this state: pending, running, done, failed, interrupted")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	st, err := store.Open(*root)
	if err != nil {
		return err
	}
	filter := store.Filter{}
	if *sweepName != "" {
		if filter.Sweep, err = findManifest(st, *sweepName); err != nil {
			return err
		}
	}
	if *state != "" {
		s, err := store.ParseState(*state)
		if err != nil {
			return usagef("--status: %v", err)
		}
		filter.States = []store.State{s}
	}
	infos, err := st.List(filter)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, listHeader())
	for _, info := range infos {
		fmt.Fprintln(tw, listRow(st, info))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(infos) == 0 {
		fmt.Fprintf(e.stderr, "no runs in %s match\n", st.Root)
	}
	if ms, err := st.Manifests(); err == nil && *sweepName == "" && len(ms) > 0 {
		var names []string
		for _, m := range ms {
			names = append(names, m.Name)
		}
		fmt.Fprintf(e.stderr, "sweeps: %s\n", strings.Join(names, ", "))
	}
	return nil
}

// listRow is one run's line under listHeader. A sampling-only run shows its source model's
// dataset and diffusion, "-" for the training columns, its wall time, and from_run= first
// among VARIED.
func listRow(st *store.Store, info store.RunInfo) string {
	cfg, _ := config.Parse("config.toml", info.Config)
	dataset, epochs, batch, lr := cfg.Data.Dataset, fmt.Sprint(cfg.Train.Epochs), fmt.Sprint(cfg.Train.BatchSize), fmt.Sprintf("%g", cfg.Train.LR)
	timesteps, schedule := cfg.Diffusion.Timesteps, cfg.Diffusion.Schedule
	loss, took := "-", "-"
	if info.Summary != nil {
		loss = fmtFloat(info.Summary.FinalLoss)
		took = duration(info.Summary.TrainSeconds)
	} else if info.Status.WallSeconds > 0 {
		took = duration(info.Status.WallSeconds)
	}
	var varied []string
	if from := cfg.Sample.FromRun; from != "" {
		dataset, epochs, batch, lr, loss, took = "?", "-", "-", "-", "-", "-"
		if srcCfg, err := readRunConfig(st, from); err == nil {
			dataset, timesteps, schedule = srcCfg.Data.Dataset, srcCfg.Diffusion.Timesteps, srcCfg.Diffusion.Schedule
		}
		if info.Status.WallSeconds > 0 {
			took = duration(info.Status.WallSeconds)
		}
		varied = append(varied, "from_run="+store.Short(from))
	}
	for _, k := range sortedKeys(info.Varied) {
		varied = append(varied, k+"="+info.Varied[k])
	}
	state := string(info.Status.State)
	if info.Abandoned {
		state = "abandoned"
	}
	if cfg.Sample.FromRun == "" && (info.Status.State == store.Running || info.Status.State == store.Interrupted) {
		state += fmt.Sprintf(" (%d/%d)", info.Status.Epoch, info.Status.Epochs)
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s", store.Short(info.Hash), state,
		dataset, epochs, batch, lr, timesteps, schedule, loss, took, strings.Join(varied, " "))
}

// runShow shows one run: `runner show HASH`.
func runShow(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "show")
	root := storeFlag(fs)
	st, hash, err := oneRun(fs, root, args)
	if err != nil {
		return err
	}
	info, err := st.Info(hash)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "run %s\n\n", hash)
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\n%s\n", listHeader(), listRow(st, info))
	if err := tw.Flush(); err != nil {
		return err
	}
	s := info.Status
	fmt.Fprintf(e.stdout, "\nstate:        %s (attempts %d, epoch %d/%d)\n", s.State, s.Attempts, s.Epoch, s.Epochs)
	if s.Reason != "" {
		fmt.Fprintf(e.stdout, "reason:       %s\n", s.Reason)
	}
	if info.Abandoned {
		fmt.Fprintf(e.stdout, "abandoned:    status.json says running, but no live process holds the run (killed hard?); `runner rerun %s` or its sweep resumes it\n", store.Short(hash))
	}
	if s.ExitCode != 0 || s.Signal != "" {
		fmt.Fprintf(e.stdout, "exit:         %d %s\n", s.ExitCode, s.Signal)
	}
	if !s.Started.IsZero() {
		fmt.Fprintf(e.stdout, "started:      %s on %s (pid %d), wall %s\n", s.Started.Format("2006-01-02 15:04:05"), s.Host, s.PID, duration(s.WallSeconds))
	}
	if err := printRunResult(e, st, hash); err != nil {
		return err
	}
	if s.LogTail != "" && s.State != store.Done {
		fmt.Fprintf(e.stdout, "\nlog tail:\n%s\n", indent(s.LogTail))
	}
	fmt.Fprintf(e.stdout, "\nrerun:        runner rerun %s\n", store.Short(hash))
	return nil
}

func listHeader() string {
	return "HASH\tSTATE\tDATASET\tEPOCHS\tBATCH\tLR\tT\tSCHEDULE\tFINAL LOSS\tTIME\tVARIED"
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// runExplain prints what went into a hash: `runner explain HASH|CONFIG`.
func runExplain(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "explain")
	root := storeFlag(fs)
	var sets multiFlag
	fs.Var(&sets, "set", "with a config file: override a key first, key=value (repeatable)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one run hash or config file")
	}
	var cfg config.Config
	if _, statErr := os.Stat(pos[0]); statErr == nil && strings.HasSuffix(pos[0], ".toml") {
		if cfg, err = loadConfig(pos[0], sets); err != nil {
			return err
		}
		if cfg.SamplingOnly() { // the hash holds the source's full hash, as `runner run` makes it
			st, err := store.Open(*root)
			if err != nil {
				return err
			}
			if cfg, err = resolveSource(st, cfg); err != nil {
				return err
			}
		}
	} else {
		st, err := store.Open(*root)
		if err != nil {
			return err
		}
		hash, err := resolveRun(st, pos[0])
		if err != nil {
			return err
		}
		if cfg, err = readRunConfig(st, hash); err != nil {
			return err
		}
		if cfg.Hash().String() != hash {
			return fmt.Errorf("run %s: its config.toml hashes to %s (the store was edited by hand?)", store.Short(hash), cfg.Hash().Short())
		}
	}
	fmt.Fprintln(e.stdout, cfg.Explain())
	return nil
}
