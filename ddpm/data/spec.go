package data

import (
	"context"
	"fmt"
	"slices"
)

// Spec names a dataset and says how its images are converted: the data.*
// keys of a run config. The zero values of the conversion fields mean "as
// stored", so Spec{Name: "mnist"} reads MNIST unchanged.
type Spec struct {
	// Name is "mnist", "fashion_mnist", "cifar10" or "folder".
	Name string
	// Dir is where the data is: for the named datasets as for [Locate] (""
	// searches); for "folder" the folder itself, which is required.
	Dir string
	// ImageSize is the side S of the square images after conversion; 0 keeps
	// the stored size (a folder's images must then all have one size).
	ImageSize int
	// Channels is 1 (grey, ITU-R BT.601 luma) or 3 (RGB) after conversion;
	// 0 keeps the dataset's own: 1 for MNIST-like sets, 3 for cifar10 and
	// folder (every folder image is read as RGB, grey ones copied to three planes).
	Channels int
	// Resize is how an image becomes S×S when ImageSize is set: [Resize]
	// (the default, also "") or [CenterCrop].
	Resize string
	// Digest, if not "", is the [FolderDigest] the folder must have: loading
	// a folder whose contents changed since the run was planned fails.
	Digest string
}

// Info is what [Spec.Inspect] finds out about a dataset without decoding its
// images.
type Info struct {
	C, H, W int      // the shape of every image after conversion (C, H, W)
	Classes []string // class names indexed by label; empty for an unlabelled folder
	// Digest is the folder's [FolderDigest]; "" for the named datasets.
	Digest string
	// Files is the number of images of a folder (both splits), and Train and
	// Test how many each split gets; 0 for the named datasets.
	Files, Train, Test int
}

// nativeShape is the stored (C, H, W) of the named datasets.
var nativeShape = map[string][3]int{
	"mnist": {1, 28, 28}, "fashion_mnist": {1, 28, 28}, "cifar10": {3, cifarSide, cifarSide},
}

// check reports a conversion setting out of range.
func (sp Spec) check() error {
	if sp.Channels != 0 && sp.Channels != 1 && sp.Channels != 3 {
		return fmt.Errorf("data: channels must be 1 or 3 (0 = the dataset's own), got %d", sp.Channels)
	}
	if sp.ImageSize < 0 {
		return fmt.Errorf("data: image size must be >= 0 (0 = as stored), got %d", sp.ImageSize)
	}
	if !slices.Contains([]string{"", Resize, CenterCrop}, sp.Resize) {
		return fmt.Errorf("data: unknown resize mode %q (want %q or %q)", sp.Resize, Resize, CenterCrop)
	}
	if sp.Resize == CenterCrop && sp.ImageSize == 0 {
		return fmt.Errorf("data: %q needs an image size to resize the square to", CenterCrop)
	}
	return nil
}

// outShape returns the shape after conversion of images stored as (c, h, w).
func (sp Spec) outShape(c, h, w int) (int, int, int) {
	if sp.Channels != 0 {
		c = sp.Channels
	}
	if sp.ImageSize != 0 {
		h, w = sp.ImageSize, sp.ImageSize
	}
	return c, h, w
}

// Inspect returns the image shape after conversion and the class names, and
// for a folder checks everything that can be checked without decoding every
// image: the layout, symlinks, file types, empty files, each image's header
// and, when ImageSize is 0, that all images have one size. For a folder it
// reads every file to compute its digest and, if sp.Digest is set, fails
// when the digest differs. For the named datasets it reads nothing. Every
// error names the file or folder at fault.
//
// Inspect is meant to run when a config is loaded, so bad data is reported
// before any run starts; [Spec.Load] repeats every check.
func (sp Spec) Inspect() (Info, error) {
	if err := sp.check(); err != nil {
		return Info{}, err
	}
	if sp.Name == "folder" {
		return inspectFolder(sp)
	}
	s, ok := nativeShape[sp.Name]
	if !ok {
		_, err := lookup(sp.Name)
		return Info{}, err
	}
	c, h, w := sp.outShape(s[0], s[1], s[2])
	return Info{C: c, H: h, W: w, Classes: ClassNames(sp.Name)}, nil
}

// Shape returns the (C, H, W) of the images [Spec.Load] returns, as
// [Spec.Inspect] finds it.
func (sp Spec) Shape() (c, h, w int, err error) {
	info, err := sp.Inspect()
	return info.C, info.H, info.W, err
}

// ClassNames returns the class names indexed by label, as [Spec.Inspect]
// finds them: [ClassNames] for the named datasets, the sorted class
// subfolder names for a folder, and nil for an unlabelled folder.
func (sp Spec) ClassNames() ([]string, error) {
	info, err := sp.Inspect()
	return info.Classes, err
}

// Load reads one split and converts every image as sp says, values in
// [-1, 1], each image (C, H, W). For a named dataset it finds the data as
// [Load] does (downloading it into the cache when dir is empty and the
// mirror answers); for a folder see [Spec.Inspect] and folder.go for the
// layout, the split and the checks.
func (sp Spec) Load(split Split) (*Set, error) {
	if err := sp.check(); err != nil {
		return nil, err
	}
	if sp.Name == "folder" {
		return loadFolder(sp, split)
	}
	set, err := newLocator().load(context.Background(), sp.Name, sp.Dir, split)
	if err != nil {
		return nil, err
	}
	return convertSet(set, sp)
}

// Convert converts every image of set in place to sp's image size, channels
// and resize mode (sp.Name and sp.Dir are not used) and returns set. A set
// already in that shape is returned unchanged.
func (sp Spec) Convert(set *Set) (*Set, error) {
	if err := sp.check(); err != nil {
		return nil, err
	}
	return convertSet(set, sp)
}

// convertSet converts every image of set in place as sp says.
func convertSet(set *Set, sp Spec) (*Set, error) {
	c, h, w := sp.outShape(set.C(), set.Height, set.Width)
	if c == set.C() && h == set.Height && w == set.Width && (h == w || sp.Resize != CenterCrop) {
		return set, nil
	}
	images := make([]float32, 0, set.N*c*h*w)
	for i := range set.N {
		out, err := convert(set.Image(i), set.C(), set.Height, set.Width, c, h, w, sp.Resize)
		if err != nil {
			return nil, fmt.Errorf("%s: image %d: %w", set.Dir, i, err)
		}
		images = append(images, out...)
	}
	set.Images, set.Channels, set.Height, set.Width = images, c, h, w
	return set, nil
}
