// Package data reads the image datasets ddpmlab trains on, finds them on disk
// and downloads them with checksums: MNIST and Fashion-MNIST from their
// standard IDX files, CIFAR-10 from its binary batches (cifar10.go), and a
// folder of the user's own PNG and JPEG images (folder.go). [Spec] names a
// dataset together with how its images are converted (size, channels), and
// [Spec.Load] reads any of them into a [Set].
//
// An MNIST-like dataset lives in one folder holding the four standard files,
// each either gzip-compressed (.gz) or raw:
//
//	train-images-idx3-ubyte   train-labels-idx1-ubyte
//	t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte
//
// [Load] finds that folder with [Locate], reads one split and scales the
// pixels to [-1, 1], the range a DDPM works in. The image count comes from
// the file headers, so subsets such as a 10,000-image MNIST work unchanged.
//
// The package is plain Go: it does not use libtorch.
package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Split names a dataset split.
type Split string

// The two splits of MNIST-like datasets. Files of the test split are named
// t10k-*.
const (
	Train Split = "train"
	Test  Split = "test"
)

// Set is one split of an image dataset held in memory.
type Set struct {
	Name     string // "mnist", "fashion_mnist", "cifar10" or "folder"
	Split    Split
	N        int // number of images
	Channels int // colour channels per image: 1 (grey) or 3 (RGB); 0 is read as 1
	Height   int // rows per image
	Width    int // columns per image
	// Images holds N*Channels*Height*Width values, image after image, each image
	// channel-major (C, H, W) and row-major within a channel, scaled from
	// [0, 255] to [-1, 1] as x/127.5 - 1.
	Images []float32
	Labels []uint8 // N class indices, each below len(Classes); nil for an unlabelled folder
	// Classes names the classes, indexed by label: ClassNames(Name) for the
	// built-in datasets, the sorted class subfolder names for a folder, and
	// empty for an unlabelled folder.
	Classes []string
	Dir     string // the folder the files were read from
	// Digest is the folder's FolderDigest for a "folder" dataset (hex
	// SHA-256 of the files read, both splits), "" for the others.
	Digest string
}

// C returns the number of colour channels, 1 when Channels is unset.
func (s *Set) C() int {
	if s.Channels < 1 {
		return 1
	}
	return s.Channels
}

// ImageLen returns the number of values per image, C·H·W.
func (s *Set) ImageLen() int { return s.C() * s.Height * s.Width }

// Image returns the values of image i, a slice of s.Images.
func (s *Set) Image(i int) []float32 {
	k := s.ImageLen()
	return s.Images[i*k : (i+1)*k : (i+1)*k]
}

// dataset describes one supported dataset: its classes, the mirrors it can
// be downloaded from and the MD5 of each .gz file (IDX) or of its archive
// (CIFAR-10).
type dataset struct {
	name    string
	classes []string
	mirrors []string          // base URLs, each ending in "/", tried in order
	md5     map[string]string // file name (with .gz, or the archive's) -> hex MD5
	hint    string            // how to get the data when it is missing
	// archive is the one file to download (a .tar.gz) for a dataset that is
	// not four IDX files; its members under archiveDir are extracted flat.
	archive, archiveDir string
}

// lookup returns the description of the named dataset. It builds a new value
// on each call, so callers cannot change what later callers see.
func lookup(name string) (dataset, error) {
	switch name {
	case "mnist":
		return dataset{
			name:    name,
			classes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
			mirrors: []string{
				"https://ossci-datasets.s3.amazonaws.com/mnist/",
				"http://yann.lecun.com/exdb/mnist/",
			},
			// torchvision.datasets.MNIST.resources
			md5: map[string]string{
				"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
				"train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
				"t10k-images-idx3-ubyte.gz":  "9fb629c4189551a2d022fa330f9573f3",
				"t10k-labels-idx1-ubyte.gz":  "ec29112dd5afa0611ce80d1b7f02629c",
			},
			hint: "run `runner data download mnist` on a machine with internet access and copy the folder here, " +
				"or point data.dir (or $DDPMLAB_DATA) at a folder holding the four files",
		}, nil
	case "fashion_mnist":
		return dataset{
			name: name,
			classes: []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
				"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"},
			mirrors: []string{"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"},
			// torchvision.datasets.FashionMNIST.resources
			md5: map[string]string{
				"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
				"train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
				"t10k-images-idx3-ubyte.gz":  "bef4ecab320f06d8554ea6380940ec79",
				"t10k-labels-idx1-ubyte.gz":  "bb300cfdad3c16e7a12a480ee83cd310",
			},
			hint: "run `apt-get install dataset-fashion-mnist` (it installs /usr/share/datasets/fashion-mnist), " +
				"or `runner data download fashion_mnist` on a machine with internet access, " +
				"or point data.dir (or $DDPMLAB_DATA) at a folder holding the four files",
		}, nil
	case "cifar10":
		return cifar10Dataset(), nil
	}
	return dataset{}, fmt.Errorf("unknown dataset %q (supported: %q)", name, Names())
}

// Names returns the names of the datasets that [Locate], [Load] and
// [Download] find by name. A "folder" dataset is not among them: it is
// wherever its data.dir says (see [Spec]).
func Names() []string { return []string{"mnist", "fashion_mnist", "cifar10"} }

// ClassNames returns the class names of the named dataset, indexed by label:
// "0" to "9" for mnist, "T-shirt/top", "Trouser", … for fashion_mnist,
// "airplane" … "truck" for cifar10. It returns nil for an unknown name and
// for "folder", whose classes are its subfolders (see [Spec.ClassNames]).
func ClassNames(name string) []string {
	d, err := lookup(name)
	if err != nil {
		return nil
	}
	return d.classes
}

// fileNames returns the base names (without .gz) of a split's image and
// label files.
func fileNames(split Split) (images, labels string, err error) {
	switch split {
	case Train:
		return "train-images-idx3-ubyte", "train-labels-idx1-ubyte", nil
	case Test:
		return "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", nil
	}
	return "", "", fmt.Errorf("unknown split %q (want %q or %q)", split, Train, Test)
}

// allFiles lists the base names of the four files of a dataset.
func allFiles() []string {
	var names []string
	for _, s := range []Split{Train, Test} {
		img, lbl, _ := fileNames(s)
		names = append(names, img, lbl)
	}
	return names
}

// Load reads one split of the named dataset and scales its pixels to [-1, 1],
// with no conversion: it is Spec{Name: name, Dir: dir}.Load(split). For
// "folder", dir is the folder and is required.
//
// The folder is found with [Locate]. When dir is empty and no folder holds
// the dataset, Load downloads it into the cache folder
// ($DDPMLAB_CACHE/data/<name>, else ~/.cache/ddpmlab/data/<name>) if the
// first mirror can be reached within a few seconds, without reporting
// progress; otherwise it returns an error that lists every place searched
// and says how to get the data.
//
// Load checks that the image and label files agree on the count and that
// every label is a valid class index.
func Load(name, dir string, split Split) (*Set, error) {
	return Spec{Name: name, Dir: dir}.Load(split)
}

func (l locator) load(ctx context.Context, name, dir string, split Split) (*Set, error) {
	d, err := l.lookup(name)
	if err != nil {
		return nil, err
	}
	imgBase, lblBase, err := fileNames(split)
	if err != nil {
		return nil, err
	}
	found, err := l.locate(name, dir)
	var nf *NotFoundError
	if errors.As(err, &nf) && dir == "" && l.download != nil {
		found, err = l.fetch(ctx, d, nf)
	}
	if err != nil {
		return nil, err
	}
	if d.archive != "" {
		return readCIFAR10(found, split)
	}

	imgPath, lblPath := existing(found, imgBase), existing(found, lblBase)
	pix, n, rows, cols, err := ReadImages(imgPath)
	if err != nil {
		return nil, err
	}
	labels, err := ReadLabels(lblPath)
	if err != nil {
		return nil, err
	}
	if len(labels) != n {
		return nil, fmt.Errorf("%s has %d images but %s has %d labels", imgPath, n, lblPath, len(labels))
	}
	for i, y := range labels {
		if int(y) >= len(d.classes) {
			return nil, fmt.Errorf("%s: label %d of image %d is out of range: %s has classes 0..%d",
				lblPath, y, i, name, len(d.classes)-1)
		}
	}

	images := make([]float32, len(pix))
	for i, p := range pix {
		images[i] = float32(p)/127.5 - 1
	}
	return &Set{Name: name, Split: split, N: n, Channels: 1, Height: rows, Width: cols,
		Images: images, Labels: labels, Classes: d.classes, Dir: found}, nil
}

// fetch downloads dataset d into the cache folder after locate found nothing
// (nf), and returns that folder. On failure the error is nf, with the
// reason the download was skipped or failed.
func (l locator) fetch(ctx context.Context, d dataset, nf *NotFoundError) (string, error) {
	dest := l.cacheDir(d.name)
	if dest == "" {
		nf.Download = errors.New("no cache folder: neither $DDPMLAB_CACHE nor $HOME is set")
		return "", nf
	}
	if err := l.download.reachable(ctx, d.mirrors[0]); err != nil {
		nf.Download = fmt.Errorf("network unreachable: %w", err)
		return "", nf
	}
	if err := l.download.fetch(ctx, d, dest, io.Discard); err != nil {
		nf.Download = err
		return "", nf
	}
	return dest, nil
}

// existing returns dir/base.gz if it exists and dir/base otherwise.
func existing(dir, base string) string {
	p := filepath.Join(dir, base)
	if _, err := os.Stat(p + ".gz"); err == nil {
		return p + ".gz"
	}
	return p
}
