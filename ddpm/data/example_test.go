package data_test

import (
	"encoding/binary"
	"fmt"
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
	// [mnist fashion_mnist]
	// Ankle boot
}
