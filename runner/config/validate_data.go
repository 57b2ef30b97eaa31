package config

import (
	"strings"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
)

// Limits of data.image_size: the U-Net halves the side twice, so it must be divisible by 4,
// and above 128 a CPU run would take days.
const (
	MinImageSize = 8
	MaxImageSize = 128
)

// Resizes lists the values of data.resize.
var Resizes = []string{data.Resize, data.CenterCrop}

// converting lists the datasets whose images data.image_size, data.channels and data.resize
// convert; MNIST-like sets are always 1×28×28.
var converting = []string{"cifar10", "folder"}

// validateData checks the data.* keys added for CIFAR-10 and folder datasets.
func (c Config) validateData(e *ErrorList) {
	d := c.Data
	conv := containsStr(converting, d.Dataset)
	// Whether data.dir exists, and what it holds, is ResolveData's to check: Validate does
	// not read the disk, so configs are valid on any machine.
	if d.Dataset == "folder" && d.Dir == "" {
		e.add("data.dir", `dataset "folder" needs data.dir, the folder of PNG or JPEG images`)
	}
	if d.ImageSize != 0 {
		switch {
		case !conv:
			e.add("data.image_size", "converts only %s images (%s is 28×28): leave it at 0, got %d", strings.Join(converting, " and "), d.Dataset, d.ImageSize)
		case d.ImageSize < MinImageSize || d.ImageSize > MaxImageSize || d.ImageSize%4 != 0:
			e.add("data.image_size", "must be 0 (as stored) or a multiple of 4 in %d..%d (the U-Net halves it twice), got %d",
				MinImageSize, MaxImageSize, d.ImageSize)
		}
	}
	if d.Channels != 0 {
		switch {
		case !conv:
			e.add("data.channels", "converts only %s images (%s is grey): leave it at 0, got %d", strings.Join(converting, " and "), d.Dataset, d.Channels)
		case d.Channels != 1 && d.Channels != 3:
			e.add("data.channels", "must be 1 (grey), 3 (RGB) or 0 (the dataset's own), got %d", d.Channels)
		}
	}
	oneOf(e, "data.resize", d.Resize, Resizes)
	if d.Resize == data.CenterCrop && d.ImageSize == 0 {
		e.add("data.resize", `%q needs data.image_size, the side to resize the square to`, data.CenterCrop)
	}
	if d.Digest != "" {
		switch {
		case d.Dataset != "folder":
			e.add("data.digest", `is for dataset "folder" only (it is the digest of its images), got %q`, d.Digest)
		case len(d.Digest) != 64 || strings.Trim(d.Digest, "0123456789abcdef") != "":
			e.add("data.digest", "must be 64 lowercase hex digits (a SHA-256, as `runner explain` shows), got %q", d.Digest)
		}
	}
}

// DataSpec returns the data keys as the data package's description of what to read.
func (c Config) DataSpec() data.Spec {
	return data.Spec{Name: c.Data.Dataset, Dir: c.Data.Dir, ImageSize: c.Data.ImageSize,
		Channels: c.Data.Channels, Resize: c.Data.Resize, Digest: c.Data.Digest}
}

// ResolveData makes a "folder" dataset's images part of c's identity: it reads the folder
// (data.Spec.Inspect: the layout, every file's bytes and image header, one size unless
// data.image_size is set) and sets data.digest to its data.FolderDigest. A data.digest that
// is already set (a stored run's config, or pinned by hand) must match, so a changed folder
// is reported instead of training on other images under the old name. Other datasets and
// sampling-only configs (whose data is the source run's) are left as they are.
//
// Call it once a config is complete (after --set and sweep overrides) and valid, and before
// hashing it: every run of the folder is then named by its contents. For a folder read at its
// stored size (data.image_size 0) it also checks model.channel_mult and model.attention
// against that size. The error is an ErrorList of *FieldError naming data.dir (with the file
// at fault in its message), data.digest or the model key.
func (c *Config) ResolveData() error {
	if c.Data.Dataset != "folder" || c.SamplingOnly() {
		return nil
	}
	sp := c.DataSpec()
	sp.Digest = ""
	info, err := sp.Inspect()
	if err != nil {
		return ErrorList{{Field: "data.dir", Msg: strings.TrimPrefix(err.Error(), "data: ")}}
	}
	var e ErrorList
	if c.Data.Digest != "" && c.Data.Digest != info.Digest {
		e.add("data.digest", "the images in %s changed: they digest to %s now, not %s (an image was added, removed, "+
			"renamed or edited); leave data.digest out to plan a run of the new contents", c.Data.Dir, info.Digest, c.Data.Digest)
	}
	if c.Data.ImageSize == 0 { // the images as stored: now their size is known
		c.validateLevels(&e, info.H, info.W)
	}
	if err := e.Err(); err != nil {
		return err
	}
	c.Data.Digest = info.Digest
	return nil
}
