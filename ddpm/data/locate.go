package data

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// systemRoot is where Debian's dataset packages install datasets:
// dataset-fashion-mnist puts its four .gz files in
// /usr/share/datasets/fashion-mnist.
const systemRoot = "/usr/share/datasets"

// NotFoundError is returned by [Locate] and [Load] when no searched folder
// holds a dataset's files (the four IDX files, or CIFAR-10's six batches).
type NotFoundError struct {
	Name     string   // dataset name
	Searched []string // each folder looked at, with what was missing, in search order
	Hint     string   // how to get the data
	Download error    // why Load did not download it, if it tried; else nil
}

// Error lists the folders searched, one a line, then the download failure
// and the hint, if any.
func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dataset %s not found; searched:", e.Name)
	for _, s := range e.Searched {
		b.WriteString("\n  ")
		b.WriteString(s)
	}
	if e.Download != nil {
		fmt.Fprintf(&b, "\ndownload: %v", e.Download)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "\nto get it: %s", e.Hint)
	}
	return b.String()
}

// locator finds datasets on disk. Its fields are the outside world it
// reads, so tests can replace them without package-level state.
type locator struct {
	getenv     func(string) string
	lookup     func(name string) (dataset, error)
	systemRoot string
	download   *downloader // nil: Load never downloads
}

func newLocator() locator {
	return locator{getenv: os.Getenv, lookup: lookup, systemRoot: systemRoot, download: newDownloader()}
}

// Locate returns the folder that holds the files of the named dataset (the
// four IDX files, each either .gz or raw, or CIFAR-10's data_batch_1.bin …
// data_batch_5.bin and test_batch.bin, also in a sub-folder
// cifar-10-batches-bin as the canonical archive unpacks), searching in this
// order:
//
//  1. dir, if it is not empty; it must hold the files itself or in a
//     sub-folder named after the dataset, and nothing else is searched;
//  2. $DDPMLAB_DATA/<name>, if DDPMLAB_DATA is set;
//  3. $DDPMLAB_CACHE/data/<name> if DDPMLAB_CACHE is set, else
//     ~/.cache/ddpmlab/data/<name>, where [Download] puts datasets by default;
//  4. /usr/share/datasets/<name with "_" replaced by "-">, where Debian's
//     dataset packages install them.
//
// When no folder holds all the files, the error is a [*NotFoundError]
// listing each folder searched and what it lacked.
func Locate(name, dir string) (string, error) {
	return newLocator().locate(name, dir)
}

func (l locator) locate(name, dir string) (string, error) {
	d, err := l.lookup(name)
	if err != nil {
		return "", err
	}
	var candidates []string
	if dir != "" {
		candidates = []string{dir, filepath.Join(dir, name)}
	} else {
		if root := l.getenv("DDPMLAB_DATA"); root != "" {
			candidates = append(candidates, filepath.Join(root, name))
		}
		if c := l.cacheDir(name); c != "" {
			candidates = append(candidates, c)
		}
		candidates = append(candidates, filepath.Join(l.systemRoot, strings.ReplaceAll(name, "_", "-")))
	}

	if d.archiveDir != "" {
		var with []string
		for _, c := range candidates {
			with = append(with, c, filepath.Join(c, strings.TrimSuffix(d.archiveDir, "/")))
		}
		candidates = with
	}

	nf := &NotFoundError{Name: name, Hint: d.hint}
	for _, c := range candidates {
		missing := missingFiles(d, c)
		if len(missing) == 0 {
			return c, nil
		}
		nf.Searched = append(nf.Searched, c+": "+missingReason(d, c, missing))
	}
	return "", nf
}

// cacheDir returns the folder datasets are downloaded to by default, or ""
// when neither $DDPMLAB_CACHE nor $HOME is set.
func (l locator) cacheDir(name string) string {
	if c := l.getenv("DDPMLAB_CACHE"); c != "" {
		return filepath.Join(c, "data", name)
	}
	if h := l.getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "ddpmlab", "data", name)
	}
	return ""
}

// missingFiles returns the base names of the dataset files that dir lacks:
// for IDX files, those it holds neither raw nor as .gz.
func missingFiles(d dataset, dir string) []string {
	var missing []string
	if d.archive != "" {
		for _, base := range cifarFiles() {
			if !isFile(filepath.Join(dir, base)) {
				missing = append(missing, base)
			}
		}
		return missing
	}
	for _, base := range allFiles() {
		if !isFile(filepath.Join(dir, base+".gz")) && !isFile(filepath.Join(dir, base)) {
			missing = append(missing, base)
		}
	}
	return missing
}

func missingReason(d dataset, dir string, missing []string) string {
	if fi, err := os.Stat(dir); err != nil {
		return "no such folder"
	} else if !fi.IsDir() {
		return "not a folder"
	}
	if d.archive != "" {
		return "missing " + strings.Join(missing, ", ")
	}
	return "missing " + strings.Join(missing, ", ") + " (.gz or raw)"
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
