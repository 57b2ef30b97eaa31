package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ddpmlab/ddpmlab/reports"
	"github.com/ddpmlab/ddpmlab/runner/store"
	"github.com/ddpmlab/ddpmlab/runner/sweep"
)

// runReport rebuilds a sweep's report: `runner report SWEEP`.
func runReport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "report")
	root := storeFlag(fs)
	out := fs.String("out", reports.DefaultOut, "folder for the HTML reports")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one sweep name (see `runner list`), e.g. runner report learning_rate-quick")
	}
	st, err := store.Open(*root)
	if err != nil {
		return err
	}
	name, err := findManifest(st, pos[0])
	if err != nil {
		return err
	}
	m, err := st.ReadManifest(name)
	if err != nil {
		return err
	}
	description := ""
	if sw, err := sweep.Load(m.File); err == nil {
		description = sw.Description
	}
	index, err := reports.Build(reports.Options{Store: *root, Sweep: name, Out: *out, Version: codeVersion, Description: description})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "report: %s\n", index)
	return nil
}

// findManifest accepts a manifest name, or a sweep name whose quick manifest exists.
func findManifest(st *store.Store, name string) (string, error) {
	if _, err := st.ReadManifest(name); err == nil {
		return name, nil
	}
	if _, err := st.ReadManifest(name + "-" + sweep.DefaultScale); err == nil {
		return name + "-" + sweep.DefaultScale, nil
	}
	ms, err := st.Manifests()
	if err != nil {
		return "", err
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	return "", errors.New(fmt.Sprintf("no sweep %q in %s (sweeps: %v)", name, st.Root, names))
}
