package data

// CIFAR-10 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny
// Images"), binary version. Each of data_batch_1.bin … data_batch_5.bin
// (train) and test_batch.bin (test) is a run of 3073-byte records:
//
//	<1 byte label 0..9><1024 bytes red><1024 bytes green><1024 bytes blue>
//
// each colour plane 32×32, row-major. That is already the (C, H, W) order of
// [Set.Images], so a record's pixels are scaled in place, x/127.5 − 1.
// batches.meta.txt holds the ten class names, one a line.

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// The CIFAR-10 record layout.
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide // R, G, B planes
	cifarRecord = 1 + cifarPixels           // label byte first
	cifarMeta   = "batches.meta.txt"
)

// cifarClasses are the class names of batches.meta.txt, indexed by label.
var cifarClasses = []string{"airplane", "automobile", "bird", "cat", "deer",
	"dog", "frog", "horse", "ship", "truck"}

func cifar10Dataset() dataset {
	return dataset{
		name:    "cifar10",
		classes: append([]string(nil), cifarClasses...),
		mirrors: []string{"https://www.cs.toronto.edu/~kriz/"},
		// https://www.cs.toronto.edu/~kriz/cifar.html, "CIFAR-10 binary version (suitable for C programs)"
		md5:        map[string]string{"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
		archive:    "cifar-10-binary.tar.gz",
		archiveDir: "cifar-10-batches-bin/",
		hint: "run `runner data download cifar10` on a machine with internet access (it fetches " +
			"https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, 162 MiB, and checks its MD5) and copy the folder here, " +
			"or unpack that archive yourself and point data.dir (or $DDPMLAB_DATA) at its cifar-10-batches-bin folder",
	}
}

// cifarBatches returns the batch files of a split, in reading order.
func cifarBatches(split Split) ([]string, error) {
	switch split {
	case Train:
		return []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}, nil
	case Test:
		return []string{"test_batch.bin"}, nil
	}
	return nil, fmt.Errorf("unknown split %q (want %q or %q)", split, Train, Test)
}

// cifarFiles lists the six batch files a CIFAR-10 folder must hold.
func cifarFiles() []string {
	tr, _ := cifarBatches(Train)
	te, _ := cifarBatches(Test)
	return append(tr, te...)
}

// readCIFAR10 reads one split from the folder dir, which holds the batch
// files. If dir also holds batches.meta.txt, its class names must be the
// canonical ones.
func readCIFAR10(dir string, split Split) (*Set, error) {
	names, err := cifarBatches(split)
	if err != nil {
		return nil, err
	}
	if err := checkCIFARMeta(filepath.Join(dir, cifarMeta)); err != nil {
		return nil, err
	}
	var images []float32
	var labels []uint8
	for _, name := range names {
		img, lbl, err := ReadCIFARBatch(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		images = append(images, img...)
		labels = append(labels, lbl...)
	}
	return &Set{Name: "cifar10", Split: split, N: len(labels), Channels: 3, Height: cifarSide, Width: cifarSide,
		Images: images, Labels: labels, Classes: append([]string(nil), cifarClasses...), Dir: dir}, nil
}

// ReadCIFARBatch reads one CIFAR-10 binary batch file: its labels and its
// images, each 3×32×32 in (C, H, W) order scaled to [-1, 1] as x/127.5 − 1.
// The file must be a whole number of 3073-byte records (the real batches hold
// 10,000) and every label must be below 10; every error names path.
func ReadCIFARBatch(path string) (images []float32, labels []uint8, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err // *PathError names the path
	}
	switch {
	case len(b) == 0:
		return nil, nil, fmt.Errorf("%s: empty file", path)
	case len(b)%cifarRecord != 0:
		return nil, nil, fmt.Errorf("%s: truncated or not a CIFAR-10 batch: %d bytes is not a whole number of %d-byte records (%d whole, %d bytes left over)",
			path, len(b), cifarRecord, len(b)/cifarRecord, len(b)%cifarRecord)
	}
	n := len(b) / cifarRecord
	images = make([]float32, n*cifarPixels)
	labels = make([]uint8, n)
	for i := range n {
		rec := b[i*cifarRecord : (i+1)*cifarRecord]
		if rec[0] >= uint8(len(cifarClasses)) {
			return nil, nil, fmt.Errorf("%s: record %d has label %d; CIFAR-10 has classes 0..%d", path, i, rec[0], len(cifarClasses)-1)
		}
		labels[i] = rec[0]
		out := images[i*cifarPixels : (i+1)*cifarPixels]
		for j, p := range rec[1:] {
			out[j] = float32(p)/127.5 - 1
		}
	}
	return images, labels, nil
}

// checkCIFARMeta checks the class names in batches.meta.txt, if the file is
// there: blank lines are ignored, and the rest must be the ten canonical
// names in order, since labels index them.
func checkCIFARMeta(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var got []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			got = append(got, line)
		}
	}
	if strings.Join(got, ",") != strings.Join(cifarClasses, ",") {
		return fmt.Errorf("%s: class names %q, want CIFAR-10's %q", path, got, cifarClasses)
	}
	return nil
}

// fetchArchive downloads d's archive into dest, checks its MD5, extracts the
// batch files and batches.meta.txt (the members under d.archiveDir) flat into
// dest, each written atomically, and removes the archive. A dest that
// already holds every batch file is left as it is.
func (dl *downloader) fetchArchive(ctx context.Context, d dataset, dest string, progress io.Writer) error {
	if len(missingFiles(d, dest)) == 0 {
		fmt.Fprintf(progress, "%s: %s already holds every batch file\n", d.name, dest)
		return nil
	}
	path := filepath.Join(dest, d.archive)
	want := d.md5[d.archive]
	if sum, err := md5File(path); err != nil || sum != want {
		if err := dl.fetchFromMirrors(ctx, d, d.archive, path, want, progress); err != nil {
			return err
		}
	}
	if err := extractTarGz(path, d.archiveDir, append(cifarFiles(), cifarMeta), dest); err != nil {
		return err
	}
	fmt.Fprintf(progress, "%s: extracted into %s\n", d.name, dest)
	return os.Remove(path)
}

// extractTarGz writes the members prefix+name of the .tar.gz archive for each
// name in names into dest/name. Every name must be found.
func extractTarGz(archive, prefix string, names []string, dest string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("%s: %w", archive, err)
	}
	defer zr.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[prefix+n] = true
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", archive, err)
		}
		if !want[h.Name] || h.Typeflag != tar.TypeReg {
			continue
		}
		delete(want, h.Name)
		out := filepath.Join(dest, strings.TrimPrefix(h.Name, prefix))
		err = durable.Write(out, 0o644, func(w io.Writer) error {
			n, err := io.Copy(w, tr)
			if err == nil && n != h.Size {
				err = fmt.Errorf("%s: member %s: got %d bytes, header says %d", archive, h.Name, n, h.Size)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if len(want) > 0 {
		var missing []string
		for _, n := range names {
			if want[prefix+n] {
				missing = append(missing, prefix+n)
			}
		}
		return fmt.Errorf("%s: archive lacks %s", archive, strings.Join(missing, ", "))
	}
	return nil
}
