package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// IDX magic numbers: 0x00000803 (unsigned bytes, 3 dimensions) for images and
// 0x00000801 (unsigned bytes, 1 dimension) for labels.
const (
	imagesMagic = 2051
	labelsMagic = 2049
)

// maxImageSide bounds rows and cols in an image header. MNIST-like sets are
// 28x28; anything above this is a corrupted header, not a dataset.
const maxImageSide = 4096

// ReadImages reads an IDX3 image file (magic 2051), gzip-compressed or raw;
// compression is detected from the first two bytes (1f 8b), not the name.
// It returns the pixels of all n images, each rows×cols, row-major.
//
// The image count is read from the header. The file must hold exactly the
// bytes the header announces: a short file is reported as truncated and a
// longer one as having trailing bytes. Memory grows with the data actually
// read, so a corrupted header with an absurd count cannot cause a huge
// allocation. Every error names path.
func ReadImages(path string) (pixels []uint8, n, rows, cols int, err error) {
	dims, body, err := readIDX(path, imagesMagic, 3, "image")
	if err != nil {
		return nil, 0, 0, 0, err
	}
	return body, dims[0], dims[1], dims[2], nil
}

// ReadLabels reads an IDX1 label file (magic 2049), gzip-compressed or raw,
// with the same checks as [ReadImages]. It does not check label values;
// [Load] does, against the dataset's classes.
func ReadLabels(path string) ([]uint8, error) {
	_, body, err := readIDX(path, labelsMagic, 1, "label")
	return body, err
}

// readIDX reads an unsigned-byte IDX file with the given magic and number of
// dimensions and returns its dimensions and body. kind ("image" or "label")
// only shapes the error messages.
func readIDX(path string, magic uint32, ndim int, kind string) (dims []int, body []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err // *PathError already names the path
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		return nil, nil, fmt.Errorf("%s: is a directory, not an IDX file", path)
	}
	if fi.Size() == 0 {
		return nil, nil, fmt.Errorf("%s: empty file", path)
	}

	br := bufio.NewReader(f)
	var r io.Reader = br
	gz := false
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: bad gzip header: %w", path, err)
		}
		defer zr.Close()
		r, gz = zr, true
	}
	// what names the byte count we compare against, for messages.
	what := "the file has"
	if gz {
		what = "it decompresses to"
	}

	// The magic first, so that a label file read as images (shorter header)
	// is reported as the wrong kind of file rather than as too short.
	hdrLen := 4 + 4*ndim
	hdr := make([]byte, hdrLen)
	short := func(got int) error {
		return fmt.Errorf("%s: too short for an IDX %s header: %s %d bytes, want at least %d", path, kind, what, got, hdrLen)
	}
	if got, err := io.ReadFull(r, hdr[:4]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, nil, short(got)
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if got := binary.BigEndian.Uint32(hdr); got != magic {
		hint := ""
		switch got {
		case imagesMagic:
			hint = " (this looks like an image file)"
		case labelsMagic:
			hint = " (this looks like a label file)"
		}
		return nil, nil, fmt.Errorf("%s: bad magic number %d, want %d for an IDX %s file%s", path, got, magic, kind, hint)
	}
	if got, err := io.ReadFull(r, hdr[4:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, nil, short(4 + got)
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}

	dims = make([]int, ndim)
	need := uint64(1)
	for i := range dims {
		d := binary.BigEndian.Uint32(hdr[4+4*i:])
		if i > 0 && (d == 0 || d > maxImageSide) {
			return nil, nil, fmt.Errorf("%s: header says images are %dx%d; want sides between 1 and %d",
				path, binary.BigEndian.Uint32(hdr[8:]), binary.BigEndian.Uint32(hdr[12:]), maxImageSide)
		}
		dims[i] = int(d)
		need *= uint64(d) // < 2^32 * 4096^2 = 2^56: cannot overflow
	}
	shape := fmt.Sprintf("%d %ss", dims[0], kind)
	if ndim == 3 {
		shape += fmt.Sprintf(" of %dx%d", dims[1], dims[2])
	}
	total := uint64(hdrLen) + need

	// For a raw file the size is known: reject a bad count before allocating.
	if !gz && uint64(fi.Size()) < total {
		return nil, nil, fmt.Errorf("%s: truncated: header says %s (%d bytes) but the file has %d bytes", path, shape, total, fi.Size())
	}

	// Read at most need bytes. bytes.Buffer grows with the data that
	// actually arrives, so a lying header in a small .gz costs nothing.
	var buf bytes.Buffer
	if !gz {
		buf.Grow(int(need))
	}
	got, err := io.CopyN(&buf, r, int64(need))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if uint64(got) < need {
		return nil, nil, fmt.Errorf("%s: truncated: header says %s (%d bytes) but %s %d bytes", path, shape, total, what, uint64(hdrLen)+uint64(got))
	}
	extra, err := io.Copy(io.Discard, r)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if extra > 0 {
		return nil, nil, fmt.Errorf("%s: %d trailing bytes: header says %s (%d bytes) but %s %d bytes", path, extra, shape, total, what, total+uint64(extra))
	}
	return dims, buf.Bytes(), nil
}
