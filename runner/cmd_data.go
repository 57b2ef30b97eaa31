package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// runData locates or downloads datasets, or makes a demo folder dataset:
// `runner data locate|download NAME`, `runner data demo-folder --out DIR`.
func runData(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "data")
	dir := fs.String("dir", "", "download: destination folder (default: ~/.cache/ddpmlab/data/NAME); demo-folder: where Fashion-MNIST is (default: searched)")
	out := fs.String("out", "", "demo-folder: the folder to create (it must not exist)")
	size := fs.Int("size", 32, "demo-folder: side of the square RGB images")
	perClass := fs.Int("per-class", 500, "demo-folder: images per class, from Fashion-MNIST's train split")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 1 && pos[0] == "demo-folder" {
		if *out == "" {
			return usagef("demo-folder: want --out DIR, the folder to create")
		}
		return runDemoFolder(e, demoFolderOptions{out: *out, size: *size, perClass: *perClass, dataDir: *dir})
	}
	if len(pos) != 2 {
		return usagef("want `locate NAME`, `download NAME` (NAME one of %v) or `demo-folder --out DIR`", data.Names())
	}
	switch pos[0] {
	case "locate":
		found, err := data.Locate(pos[1], "")
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, found)
		return nil
	case "download":
		dest := *dir
		if dest == "" {
			cache := os.Getenv("DDPMLAB_CACHE")
			if cache == "" {
				home, err := os.UserHomeDir()
				if err != nil {
					return err
				}
				cache = filepath.Join(home, ".cache", "ddpmlab")
			}
			dest = filepath.Join(cache, "data", pos[1])
		}
		if err := data.Download(ctx, pos[1], dest, e.stderr); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, dest)
		return nil
	default:
		return usagef("unknown data action %q: want locate, download or demo-folder", pos[0])
	}
}

// demoFolderOptions are the flags of `runner data demo-folder`.
type demoFolderOptions struct {
	out      string // the folder to create
	size     int    // side of the images
	perClass int    // images per class
	dataDir  string // where Fashion-MNIST is; "" searches as data.Locate does
}

// demoHue is the hue of class k of the demo folder, in [0, 1): the ten classes are spread
// around the colour wheel, so an image's colour says its class.
func demoHue(k int) float64 { return float64(k) / 10 }

// runDemoFolder makes a folder dataset from Fashion-MNIST, offline: the first perClass
// images of each class of its train split, resized to size×size (area interpolation) and
// tinted with the class's hue, as RGB PNGs in one subfolder per class, named
// "<label>_<class>" so the folders sort in Fashion-MNIST's label order. The folder is written
// whole or not at all (durable.CreateDir), and an existing one is never touched.
func runDemoFolder(e *env, o demoFolderOptions) error {
	if o.size < 8 || o.size > 128 || o.size%4 != 0 {
		return usagef("demo-folder: --size must be a multiple of 4 in 8..128, got %d", o.size)
	}
	if o.perClass < 1 {
		return usagef("demo-folder: --per-class must be >= 1, got %d", o.perClass)
	}
	if _, err := os.Lstat(o.out); err == nil {
		return fmt.Errorf("demo-folder: %s already exists: remove it or choose another --out", o.out)
	}
	all, err := data.Load("fashion_mnist", o.dataDir, data.Train)
	if err != nil {
		return err
	}
	classes := data.ClassNames("fashion_mnist")
	// The first perClass images of each class, class after class; only those are resized.
	picked := make([][]int, len(classes))
	for i, y := range all.Labels {
		if len(picked[y]) < o.perClass {
			picked[y] = append(picked[y], i)
		}
	}
	set := &data.Set{Name: all.Name, Split: all.Split, Channels: 1, Height: all.Height, Width: all.Width, Dir: all.Dir}
	for k, idx := range picked {
		if len(idx) < o.perClass {
			return fmt.Errorf("demo-folder: Fashion-MNIST in %s has only %d images of class %q; want --per-class <= %d",
				all.Dir, len(idx), classes[k], len(idx))
		}
		for _, i := range idx {
			set.Images = append(set.Images, all.Image(i)...)
			set.Labels = append(set.Labels, uint8(k))
			set.N++
		}
	}
	if set, err = (data.Spec{ImageSize: o.size}).Convert(set); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(o.out)), 0o755); err != nil {
		return err
	}
	err = durable.CreateDir(o.out, func(tmp string) error {
		for k := range classes {
			sub := filepath.Join(tmp, demoClassDir(k, classes[k]))
			if err := os.Mkdir(sub, 0o755); err != nil {
				return err
			}
			for n := range o.perClass {
				img := tint(set.Image(k*o.perClass+n), set.Height, set.Width, demoHue(k))
				f, err := os.Create(filepath.Join(sub, fmt.Sprintf("%05d.png", n)))
				if err != nil {
					return err
				}
				err = png.Encode(f, img)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return fmt.Errorf("%s: %w", f.Name(), err)
				}
			}
		}
		return nil
	})
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("demo-folder: %s appeared while writing: left as it is", o.out)
	}
	if err != nil {
		return err
	}
	digest, err := data.FolderDigest(o.out)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "demo-folder: %d classes x %d RGB %dx%d images from Fashion-MNIST (%s), digest %s\n",
		len(classes), o.perClass, o.size, o.size, set.Dir, digest[:12])
	fmt.Fprintln(e.stdout, o.out)
	return nil
}

// demoClassDir is the folder name of class k: "0_t-shirt_top", "9_ankle_boot".
func demoClassDir(k int, name string) string {
	name = strings.NewReplacer("/", "_", " ", "_").Replace(strings.ToLower(name))
	return fmt.Sprintf("%d_%s", k, name)
}

// tint turns a grey image (values in [-1, 1], h×w) into RGB: a pixel of brightness g in
// [0, 1] becomes g times the colour of the given hue at saturation 0.8 and full value, so
// the black background stays black and the garment takes the class's colour.
func tint(grey []float32, h, w int, hue float64) *image.RGBA {
	r, g, b := hsv(hue, 0.8, 1)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := math.Min(1, math.Max(0, (float64(grey[y*w+x])+1)/2))
			img.SetRGBA(x, y, color.RGBA{byte8(v * r), byte8(v * g), byte8(v * b), 255})
		}
	}
	return img
}

// byte8 maps [0, 1] to 0..255, rounding to nearest.
func byte8(v float64) uint8 { return uint8(math.Round(255 * v)) }

// hsv converts hue, saturation and value in [0, 1] to red, green and blue in [0, 1]
// (the hexcone model of Smith 1978).
func hsv(h, s, v float64) (r, g, b float64) {
	h = 6 * (h - math.Floor(h))
	i := math.Floor(h)
	f := h - i
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	switch int(i) {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	default:
		return v, p, q
	}
}
