// Package viztest reads back the PNG and GIF files that package viz writes, for tests of viz
// and of the packages that write pictures through it (runner/job, runner).
//
// Why here: tests in ddpm and in runner need the same readers, and Go's internal rule keeps
// ddpm/internal out of reach of runner, so they are a small exported package beside viz. It
// imports only the standard library.
package viztest

import (
	"image"
	"image/gif"
	"image/png"
	"io"
	"os"
	"testing"
)

// DecodePNG decodes the PNG file at path. It stops the test (t.Fatal) if the file cannot be
// opened or decoded.
func DecodePNG(t testing.TB, path string) image.Image {
	t.Helper()
	return decodeFile(t, path, png.Decode)
}

// DecodeGIF decodes every frame of the GIF file at path. It stops the test (t.Fatal) if the
// file cannot be opened or decoded.
func DecodeGIF(t testing.TB, path string) *gif.GIF {
	t.Helper()
	return decodeFile(t, path, gif.DecodeAll)
}

// decodeFile opens path and decodes it with decode, stopping the test on any error.
func decodeFile[T any](t testing.TB, path string, decode func(io.Reader) (T, error)) T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}
