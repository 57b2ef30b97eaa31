package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/ddpmlab/ddpmlab/reports"
	"github.com/ddpmlab/ddpmlab/runner/store"
	"github.com/ddpmlab/ddpmlab/runner/sweep"
)

// runReport rebuilds a sweep's report, `runner report SWEEP`, or puts two sweeps on one
// page, `runner report --compare A B`.
func runReport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "report")
	root := storeFlag(fs)
	out := fs.String("out", reports.DefaultOut, "folder for the HTML reports")
	compare := fs.Bool("compare", false, "take two sweeps, A and B, and put them on one page (B read as the change from A)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *compare {
		return runCompare(e, *root, *out, pos)
	}
	_, name, m, err := oneSweep(fs, root, pos)
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

// runCompare is `runner report --compare A B`: both sweeps' reports and the page comparing them.
func runCompare(e *env, root, out string, pos []string) error {
	if len(pos) != 2 {
		return usagef("--compare takes two sweep names, e.g. report --compare learning_rate-quick learning_rate-full")
	}
	st, err := store.Open(root)
	if err != nil {
		return err
	}
	var names [2]string
	for i, p := range pos {
		if names[i], err = findManifest(st, p); err != nil {
			return err
		}
	}
	index, err := reports.Compare(reports.CompareOptions{Store: root, A: names[0], B: names[1], Out: out, Version: codeVersion})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "report: %s\n", index)
	return nil
}

// oneSweep parses the arguments of a command that takes one sweep name and returns the store,
// the manifest's name (see findManifest) and the manifest.
func oneSweep(fs *flag.FlagSet, root *string, args []string) (*store.Store, string, store.Manifest, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, "", store.Manifest{}, err
	}
	if len(pos) != 1 {
		return nil, "", store.Manifest{}, usagef("want one sweep name (see `runner list`), e.g. %s learning_rate-quick", fs.Name())
	}
	st, err := store.Open(*root)
	if err != nil {
		return nil, "", store.Manifest{}, err
	}
	name, err := findManifest(st, pos[0])
	if err != nil {
		return nil, "", store.Manifest{}, err
	}
	m, err := st.ReadManifest(name)
	if err != nil {
		return nil, "", store.Manifest{}, err
	}
	return st, name, m, nil
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
