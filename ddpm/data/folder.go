package data

// A "folder" dataset: the user's own PNG and JPEG images.
//
// Layout. data.dir holds either
//   - images directly (unlabelled: Labels is nil, no classes), or
//   - one subfolder per class, each holding that class's images, in further
//     subfolders if wished (labelled: the class names are the sorted subfolder
//     names, label i is the i-th);
//
// and either of these again under train/ and test/, which are then the two
// splits (with classes, both must have the same class folders). Without
// train/ and test/, the split is fixed by path order: within each class (or
// the whole folder when unlabelled) the images sorted by path are numbered
// 1, 2, …, and the 10th, 20th, 30th, … are the test split; a class of 2 to 9
// images gives its last one to test, so every class with two images is in
// both splits. Names starting with "." (.DS_Store, .git) are ignored.
// Symlinks are followed; a symlink that leads back to a folder above it, or
// to a folder already read, is an error.
//
// Bad data is an error naming the file, never skipped: a file that is not
// .png, .jpg or .jpeg; an empty or undecodable (truncated, corrupt) image; a
// class folder with no images; an image beside class folders; an empty
// folder; and, with no image size set, images of different sizes.
//
// Digest. [FolderDigest] is the SHA-256 of, for each image of both splits in
// the order of its path relative to data.dir (with "/" separators): the path,
// a NUL byte, the file's length as 8 big-endian bytes, and its bytes. So
// renaming, moving (between classes or splits), adding, removing or changing
// any image changes it; the conversion settings (data.image_size,
// data.channels, data.resize) are not in it, as they are keys of the run
// config, hashed on their own.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"image"
	_ "image/jpeg" // registers the JPEG decoder for image.Decode
	_ "image/png"  // registers the PNG decoder
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// digestVersion starts every folder digest's input, so a change to what is
// hashed can never give an old digest to different contents.
const digestVersion = "ddpmlab folder digest v1\n"

// imageExts are the file name endings a folder dataset reads (any case).
var imageExts = []string{".png", ".jpg", ".jpeg"}

// folderFile is one image of a folder dataset.
type folderFile struct {
	rel   string // path relative to the folder, "/"-separated: what is hashed and sorted
	path  string // the path to open
	class int    // label; -1 when unlabelled
	split Split
}

// folderLayout is a folder dataset's file list, before any file is read.
type folderLayout struct {
	dir     string
	classes []string     // nil when unlabelled
	files   []folderFile // sorted by rel
}

// scanFolder walks dir and returns its layout, checking the layout rules of
// the package comment above. It reads no file.
func scanFolder(dir string) (*folderLayout, error) {
	if dir == "" {
		return nil, errors.New(`data: dataset "folder" needs a folder (data.dir) of PNG or JPEG images`)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("data: folder dataset: %w (point data.dir at a folder of images; "+
			"`runner data demo-folder --out DIR` makes one from Fashion-MNIST)", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("data: folder dataset: %s is not a folder", dir)
	}
	w := &walker{}
	entries, err := w.list(dir, []os.FileInfo{fi})
	if err != nil {
		return nil, err
	}
	has := func(name string) bool {
		return slices.ContainsFunc(entries, func(e entry) bool { return e.name == name && e.info.IsDir() })
	}
	lay := &folderLayout{dir: dir}
	if has("train") || has("test") {
		if !has("train") || !has("test") {
			return nil, fmt.Errorf("data: %s has a train/ or test/ subfolder but not both: give both (the two splits), "+
				"or rename it if it is a class", dir)
		}
		for _, e := range entries {
			if e.name != "train" && e.name != "test" {
				return nil, fmt.Errorf("data: %s: outside train/ and test/: with those two subfolders every image must be in one of them",
					filepath.Join(dir, e.name))
			}
		}
		tr, err := w.splitRoot(dir, "train", fi)
		if err != nil {
			return nil, err
		}
		te, err := w.splitRoot(dir, "test", fi)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(tr.classes, te.classes) {
			return nil, fmt.Errorf("data: %s: train/ has class folders %q but test/ has %q: they must be the same",
				dir, tr.classes, te.classes)
		}
		lay.classes = tr.classes
		for _, f := range tr.files {
			f.split = Train
			lay.files = append(lay.files, f)
		}
		for _, f := range te.files {
			f.split = Test
			lay.files = append(lay.files, f)
		}
	} else {
		r, err := w.classify(dir, "", entries, []os.FileInfo{fi})
		if err != nil {
			return nil, err
		}
		lay.classes, lay.files = r.classes, r.files
		splitByOrder(lay.files)
	}
	if len(lay.files) == 0 {
		return nil, fmt.Errorf("data: %s: no images: want PNG or JPEG files (%s) in it, or in one subfolder per class, "+
			"or in train/ and test/", dir, strings.Join(imageExts, ", "))
	}
	if len(lay.classes) > 256 {
		return nil, fmt.Errorf("data: %s: %d class folders; at most 256 are supported (labels are bytes)", dir, len(lay.classes))
	}
	slices.SortFunc(lay.files, func(a, b folderFile) int { return strings.Compare(a.rel, b.rel) })
	return lay, nil
}

// splitByOrder marks the test images of a folder with no train/ and test/:
// the 10th, 20th, … of each class in path order, and the last of a class
// of 2 to 9 images; files is sorted by rel within each class.
func splitByOrder(files []folderFile) {
	n := map[int]int{}
	for _, f := range files {
		n[f.class]++
	}
	k := map[int]int{}
	for i := range files {
		c := files[i].class
		k[c]++
		files[i].split = Train
		if k[c]%10 == 0 || n[c] >= 2 && n[c] < 10 && k[c] == n[c] {
			files[i].split = Test
		}
	}
}

// rooted is the result of reading one split root: its classes and images.
type rooted struct {
	classes []string
	files   []folderFile
}

// walker reads folders, following symlinks and refusing loops.
type walker struct {
	seen []os.FileInfo // every folder read, to catch one reached twice
	from []string      // the path each of seen was first reached by
}

// entry is one non-hidden item of a folder, with its symlinks resolved.
type entry struct {
	name string
	path string
	info os.FileInfo // of the target for a symlink
}

// list returns the non-hidden entries of the folder p, sorted by name, with
// symlinks resolved. ancestors are the folders from the root down to p; a
// symlink to one of them is a loop.
func (w *walker) list(p string, ancestors []os.FileInfo) ([]entry, error) {
	self := ancestors[len(ancestors)-1]
	for i, s := range w.seen {
		if os.SameFile(s, self) {
			return nil, fmt.Errorf("data: %s: this folder was already read as %s (two symlinks or paths lead to it); "+
				"each image must be reached once", p, w.from[i])
		}
	}
	w.seen, w.from = append(w.seen, self), append(w.from, p)
	des, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	var out []entry
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			continue
		}
		full := filepath.Join(p, de.Name())
		fi, err := os.Stat(full)
		if err != nil {
			if errors.Is(err, syscall.ELOOP) {
				return nil, fmt.Errorf("data: %s: symlink loop (the link resolves to itself)", full)
			}
			if lfi, lerr := os.Lstat(full); lerr == nil && lfi.Mode()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(full)
				return nil, fmt.Errorf("data: %s: broken symlink to %s", full, target)
			}
			return nil, fmt.Errorf("data: %w", err)
		}
		if fi.IsDir() {
			for _, a := range ancestors {
				if os.SameFile(a, fi) {
					target, _ := os.Readlink(full)
					return nil, fmt.Errorf("data: %s: symlink loop: it leads back to %s, a folder it is in", full, target)
				}
			}
		} else if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("data: %s: not a regular file or folder", full)
		}
		out = append(out, entry{name: de.Name(), path: full, info: fi})
	}
	return out, nil
}

// splitRoot reads dir/name, the root of one split.
func (w *walker) splitRoot(dir, name string, dirInfo os.FileInfo) (rooted, error) {
	p := filepath.Join(dir, name)
	fi, err := os.Stat(p)
	if err != nil {
		return rooted{}, fmt.Errorf("data: %w", err)
	}
	anc := []os.FileInfo{dirInfo, fi}
	entries, err := w.list(p, anc)
	if err != nil {
		return rooted{}, err
	}
	return w.classify(p, name, entries, anc)
}

// classify reads a split root p (rel is its path relative to the dataset
// folder): images directly in it (unlabelled) or one subfolder per class.
func (w *walker) classify(p, rel string, entries []entry, ancestors []os.FileInfo) (rooted, error) {
	var r rooted
	hasDir := slices.ContainsFunc(entries, func(e entry) bool { return e.info.IsDir() })
	if !hasDir {
		for _, e := range entries {
			f, err := imageFile(e, path.Join(rel, e.name), -1)
			if err != nil {
				return rooted{}, err
			}
			r.files = append(r.files, f)
		}
		return r, nil
	}
	for _, e := range entries {
		if !e.info.IsDir() {
			return rooted{}, fmt.Errorf("data: %s: a file beside class folders: with class subfolders, every image must be in one "+
				"(the folder name is its label)", e.path)
		}
	}
	for label, e := range entries {
		r.classes = append(r.classes, e.name)
		n := len(r.files)
		var err error
		if r.files, err = w.images(e.path, path.Join(rel, e.name), label, append(slices.Clip(ancestors), e.info), r.files); err != nil {
			return rooted{}, err
		}
		if len(r.files) == n {
			return rooted{}, fmt.Errorf("data: %s: class folder with no images (want %s files): add images or remove the folder",
				e.path, strings.Join(imageExts, ", "))
		}
	}
	return r, nil
}

// images appends every image under the class folder p, recursively, to files.
func (w *walker) images(p, rel string, label int, ancestors []os.FileInfo, files []folderFile) ([]folderFile, error) {
	entries, err := w.list(p, ancestors)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		r := path.Join(rel, e.name)
		if e.info.IsDir() {
			if files, err = w.images(e.path, r, label, append(slices.Clip(ancestors), e.info), files); err != nil {
				return nil, err
			}
			continue
		}
		f, err := imageFile(e, r, label)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// imageFile checks that e is named as an image and returns it.
func imageFile(e entry, rel string, label int) (folderFile, error) {
	if !slices.Contains(imageExts, strings.ToLower(filepath.Ext(e.name))) {
		return folderFile{}, fmt.Errorf("data: %s: not a PNG or JPEG file (want %s); a folder dataset holds only images: "+
			"move it out (names starting with \".\" are ignored)", e.path, strings.Join(imageExts, ", "))
	}
	return folderFile{rel: rel, path: e.path, class: label}, nil
}

// readImageFile reads one image file's bytes, adding them to the digest h.
func readImageFile(f folderFile, h digester) ([]byte, error) {
	b, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("data: %s: empty file (0 bytes), not an image", f.path)
	}
	h.add(f.rel, b)
	return b, nil
}

// digester computes a folder digest (see the comment at the top of this file).
type digester struct{ h hash.Hash }

func newDigester() (digester, func() string) {
	h := sha256.New()
	h.Write([]byte(digestVersion))
	return digester{h}, func() string { return hex.EncodeToString(h.Sum(nil)) }
}

func (d digester) add(rel string, b []byte) {
	d.h.Write([]byte(rel))
	d.h.Write([]byte{0})
	d.h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
	d.h.Write(b)
}

// decodeErr names the file an image failed to decode in.
func decodeErr(f folderFile, err error) error {
	return fmt.Errorf("data: %s: cannot read it as a PNG or JPEG image: %w (truncated, corrupt or not an image?)", f.path, err)
}

// sizeRule checks that an image of w×h may join images of the first one's
// size when no image size is set.
type sizeRule struct {
	convert    bool // data.image_size is set: any size is converted
	first      string
	fw, fh     int
	fromHeader bool
}

func (r *sizeRule) check(path string, w, h int) error {
	if r.convert {
		return nil
	}
	if r.first == "" {
		r.first, r.fw, r.fh = path, w, h
		return nil
	}
	if w != r.fw || h != r.fh {
		return fmt.Errorf("data: images of different sizes and no conversion rule: %s is %dx%d but %s is %dx%d; "+
			"set data.image_size (and data.resize) to convert every image to one square size", r.first, r.fw, r.fh, path, w, h)
	}
	return nil
}

// FolderDigest returns the digest of the folder dataset in dir (see the
// comment at the top of folder.go: SHA-256, in hex, of every image's
// relative path and bytes, both splits). It checks the layout, that every
// file is a non-empty image with a readable header, but not that images
// decode fully or share a size.
func FolderDigest(dir string) (string, error) {
	info, err := inspectFolder(Spec{Name: "folder", Dir: dir, ImageSize: -1})
	return info.Digest, err
}

// inspectFolder is Spec.Inspect for a folder. ImageSize -1 (FolderDigest
// only) skips the size rule.
func inspectFolder(sp Spec) (Info, error) {
	lay, err := scanFolder(sp.Dir)
	if err != nil {
		return Info{}, err
	}
	h, sum := newDigester()
	rule := sizeRule{convert: sp.ImageSize != 0}
	info := Info{Classes: lay.classes, Files: len(lay.files)}
	for _, f := range lay.files {
		b, err := readImageFile(f, h)
		if err != nil {
			return Info{}, err
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return Info{}, decodeErr(f, err)
		}
		if err := rule.check(f.path, cfg.Width, cfg.Height); err != nil {
			return Info{}, err
		}
		if f.split == Test {
			info.Test++
		} else {
			info.Train++
		}
	}
	info.Digest = sum()
	if err := sp.checkDigest(lay.dir, info.Digest); err != nil {
		return Info{}, err
	}
	info.C, info.H, info.W = sp.outShape(3, rule.fh, rule.fw)
	return info, nil
}

// checkDigest compares a folder's digest with the one sp pins, if any.
func (sp Spec) checkDigest(dir, got string) error {
	if sp.Digest != "" && sp.Digest != got {
		return fmt.Errorf("data: %s: the folder's contents changed: its digest is %s but the run was planned with %s "+
			"(an image was added, removed, renamed or changed); plan a new run for the new contents", dir, short(got), short(sp.Digest))
	}
	return nil
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// loadFolder is Spec.Load for a folder: it reads and decodes every image of
// both splits (so a bad image anywhere fails before training), converts
// them, and keeps those of split.
func loadFolder(sp Spec, split Split) (*Set, error) {
	if split != Train && split != Test {
		return nil, fmt.Errorf("unknown split %q (want %q or %q)", split, Train, Test)
	}
	lay, err := scanFolder(sp.Dir)
	if err != nil {
		return nil, err
	}
	h, sum := newDigester()
	rule := sizeRule{convert: sp.ImageSize != 0}
	set := &Set{Name: "folder", Split: split, Classes: lay.classes, Dir: lay.dir}
	for _, f := range lay.files {
		b, err := readImageFile(f, h)
		if err != nil {
			return nil, err
		}
		img, _, err := image.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, decodeErr(f, err)
		}
		r := img.Bounds()
		if err := rule.check(f.path, r.Dx(), r.Dy()); err != nil {
			return nil, err
		}
		if f.split != split {
			continue
		}
		c, oh, ow := sp.outShape(3, r.Dy(), r.Dx())
		out, err := convert(rgbPlanes(img), 3, r.Dy(), r.Dx(), c, oh, ow, sp.Resize)
		if err != nil {
			return nil, fmt.Errorf("data: %s: %w", f.path, err)
		}
		if set.Images == nil { // all images of the split have this shape: allocate once
			n := 0
			for _, g := range lay.files {
				if g.split == split {
					n++
				}
			}
			set.Images = make([]float32, 0, n*len(out))
		}
		set.Images = append(set.Images, out...)
		if lay.classes != nil {
			set.Labels = append(set.Labels, uint8(f.class))
		}
		set.N++
		set.Channels, set.Height, set.Width = c, oh, ow
	}
	set.Digest = sum()
	if err := sp.checkDigest(lay.dir, set.Digest); err != nil {
		return nil, err
	}
	if set.N == 0 {
		return nil, fmt.Errorf("data: %s: the %s split has no images (the 10th, 20th, … image of each class is test, "+
			"and a class of 2 to 9 images gives its last; add images, or give train/ and test/ subfolders)", lay.dir, split)
	}
	return set, nil
}

// rgbPlanes returns img as three planes R, G, B (C, H, W) in [-1, 1]. Colours
// are read through color.Color.RGBA, so a transparent pixel counts as if
// drawn over black; 16-bit images keep their precision (v/257 in [0, 255]).
func rgbPlanes(img image.Image) []float32 {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	out := make([]float32, 3*w*h)
	// Fast paths for what the PNG and JPEG decoders return most: the same values as the
	// general loop below, without an interface call per pixel.
	switch m := img.(type) {
	case *image.RGBA:
		for y := range h {
			o := m.PixOffset(r.Min.X, r.Min.Y+y)
			row := m.Pix[o : o+4*w]
			for x := range w {
				for c := range 3 {
					out[c*w*h+y*w+x] = float32(row[4*x+c])/127.5 - 1
				}
			}
		}
		return out
	case *image.Gray:
		for y := range h {
			o := m.PixOffset(r.Min.X, r.Min.Y+y)
			for x, p := range m.Pix[o : o+w] {
				v := float32(p)/127.5 - 1
				out[y*w+x], out[w*h+y*w+x], out[2*w*h+y*w+x] = v, v, v
			}
		}
		return out
	}
	for y := range h {
		for x := range w {
			cr, cg, cb, _ := img.At(r.Min.X+x, r.Min.Y+y).RGBA()
			i := y*w + x
			out[i] = scale16(cr)
			out[w*h+i] = scale16(cg)
			out[2*w*h+i] = scale16(cb)
		}
	}
	return out
}

// scale16 maps a 16-bit colour value v (an 8-bit value p is stored as
// 257·p) to [-1, 1] as (v/257)/127.5 − 1, the scaling of the other readers.
func scale16(v uint32) float32 {
	p := float32(float64(v) / 257) // exact for 8-bit images
	return p/127.5 - 1
}
