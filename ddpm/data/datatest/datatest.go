// Package datatest makes small synthetic image data sets for tests of the packages that read,
// train on or measure a [data.Set] (ddpm/quality, runner/job).
//
// Why here: both ddpm and runner tests need the same sets, and Go's internal rule keeps
// ddpm/internal out of reach of runner, so the helper is a small exported package beside the
// data package it builds for. It imports only the standard library and ddpm/data, never gotch.
package datatest

import (
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
)

// ColouredShapes makes n RGB side×side images (side at least 4): image i shows a filled square
// of class i mod 3's colour (red, green, blue) at a random place on a dark grey background, with
// a little noise, all drawn from rng, so the same rng state gives the same set. Pixel values are
// −0.8 for the background and, inside the square, 0.9 in the class's channel and −1 in the
// others, each plus 0.05·N(0, 1). A labelled set has Labels i mod 3 and Classes red, green,
// blue; an unlabelled one has neither and the same images.
func ColouredShapes(rng *rand.Rand, n, side int, split data.Split, labelled bool) *data.Set {
	plane := side * side
	set := &data.Set{Name: "shapes", Split: split, N: n, Channels: 3, Height: side, Width: side,
		Images: make([]float32, 0, n*3*plane)}
	if labelled {
		set.Classes = []string{"red", "green", "blue"}
	}
	for i := range n {
		k := i % 3
		size := side/4 + rng.IntN(side/4)
		r0, c0 := rng.IntN(side-size), rng.IntN(side-size)
		for ch := range 3 {
			for y := range side {
				for x := range side {
					v := float32(-0.8)
					if y >= r0 && y < r0+size && x >= c0 && x < c0+size {
						v = -1
						if ch == k {
							v = 0.9
						}
					}
					set.Images = append(set.Images, v+0.05*float32(rng.NormFloat64()))
				}
			}
		}
		if labelled {
			set.Labels = append(set.Labels, uint8(k))
		}
	}
	return set
}

// MNIST10k returns the folder of the project's 10,000-image MNIST subset (9,003 training and 997
// test images): shared/data/mnist-10k beside the repository's checkout when it is there, else
// wherever the runner would find "mnist" (data.Locate: $DDPMLAB_DATA, the cache that
// `go tool task setup` fills, /usr/share/datasets). It returns "" when neither holds MNIST, for
// the caller to skip; so a fresh clone outside the project's folder still runs the tests on real
// data once setup has run.
func MNIST10k() string {
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				shared := filepath.Join(filepath.Dir(dir), "shared", "data", "mnist-10k")
				if _, err := os.Stat(shared); err == nil {
					return shared
				}
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if dir, err := data.Locate("mnist", ""); err == nil {
		return dir
	}
	return ""
}
