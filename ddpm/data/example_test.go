package data_test

import (
	"encoding/binary"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
)

// Load reads a split from a folder holding the four standard IDX files. This
// example writes a two-image dataset first; with the real data, pass its
// folder, or "" to search $DDPMLAB_DATA, the cache and /usr/share/datasets.
func Example() {
	dir, _ := os.MkdirTemp("", "mnist")
	defer os.RemoveAll(dir)
	// An IDX file is a big-endian header (magic, then each dimension)
	// followed by unsigned bytes.
	write := func(name string, header []uint32, body []byte) {
		b, _ := binary.Append(nil, binary.BigEndian, header)
		os.WriteFile(filepath.Join(dir, name), append(b, body...), 0o644)
	}
	for _, prefix := range []string{"train", "t10k"} {
		write(prefix+"-images-idx3-ubyte", []uint32{2051, 2, 2, 2}, []byte{0, 255, 255, 0, 0, 0, 0, 51})
		write(prefix+"-labels-idx1-ubyte", []uint32{2049, 2}, []byte{7, 1})
	}

	train, err := data.Load("mnist", dir, data.Train)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d images of %dx%d\n", train.N, train.Height, train.Width)
	fmt.Println("first image:", train.Image(0))
	fmt.Println("second image:", train.Image(1))
	fmt.Println("labels:", data.ClassNames(train.Name)[train.Labels[0]], data.ClassNames(train.Name)[train.Labels[1]])
	// Output:
	// 2 images of 2x2
	// first image: [-1 1 1 -1]
	// second image: [-1 -1 -1 -0.6]
	// labels: 7 1
}

func ExampleClassNames() {
	fmt.Println(data.Names())
	fmt.Println(data.ClassNames("fashion_mnist")[9])
	// Output:
	// [mnist fashion_mnist cifar10]
	// Ankle boot
}

// A folder dataset is a folder of PNG or JPEG images, one subfolder per class. This example
// writes two classes of 4x4 images, reads them as 2x2 grey images, and prints the folder's
// digest, which changes whenever any image does.
func ExampleSpec_Load() {
	dir, _ := os.MkdirTemp("", "folder")
	defer os.RemoveAll(dir)
	for class, grey := range map[string]uint8{"dark": 51, "light": 204} {
		os.Mkdir(filepath.Join(dir, class), 0o755)
		img := image.NewGray(image.Rect(0, 0, 4, 4))
		for i := range img.Pix {
			img.Pix[i] = grey
		}
		for _, name := range []string{"a.png", "b.png"} {
			f, _ := os.Create(filepath.Join(dir, class, name))
			png.Encode(f, img)
			f.Close()
		}
	}

	spec := data.Spec{Name: "folder", Dir: dir, ImageSize: 2, Channels: 1}
	// Two images per class: the second (b.png) of each is the test split.
	train, err := spec.Load(data.Train)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d images of %dx%dx%d, classes %q, labels %v\n", train.N, train.C(), train.Height, train.Width, train.Classes, train.Labels)
	fmt.Println("first image:", train.Image(0))
	digest, _ := data.FolderDigest(dir)
	fmt.Println("digest matches:", digest == train.Digest, len(digest))
	// Output:
	// 2 images of 1x2x2, classes ["dark" "light"], labels [0 1]
	// first image: [-0.6 -0.6 -0.6 -0.6]
	// digest matches: true 64
}
