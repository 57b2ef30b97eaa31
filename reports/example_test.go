package reports_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ddpmlab/ddpmlab/reports"
)

func ExampleBuild() {
	out, err := os.MkdirTemp("", "reports-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(out)
	index, err := reports.Build(reports.Options{
		Store:   "testdata/store",
		Sweep:   "lr_demo",
		Out:     out,
		Now:     time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC),
		Version: "example",
	})
	if err != nil {
		panic(err)
	}
	rel, _ := filepath.Rel(out, index)
	fmt.Println(filepath.ToSlash(rel))
	pages, _ := filepath.Glob(filepath.Join(out, "lr_demo", "runs", "*.html"))
	fmt.Println(len(pages), "run pages")
	// Output:
	// lr_demo/index.html
	// 3 run pages
}

func ExampleCompare() {
	out, err := os.MkdirTemp("", "reports-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(out)
	index, err := reports.Compare(reports.CompareOptions{
		Store:   "testdata/store",
		A:       "learning_rate-quick",
		B:       "learning_rate-next",
		Out:     out,
		Now:     time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC),
		Version: "example",
	})
	if err != nil {
		panic(err)
	}
	rel, _ := filepath.Rel(out, index)
	fmt.Println(filepath.ToSlash(rel))
	// Output:
	// learning_rate-quick_vs_learning_rate-next/index.html
}
