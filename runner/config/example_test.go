package config_test

import (
	"fmt"

	"github.com/ddpmlab/ddpmlab/runner/config"
)

// A run config starts from the defaults, takes --set overrides by dotted key, and is named by
// the hash of its canonical form: spelling a value differently does not rename the run.
func Example() {
	a, b := config.Default(), config.Default()
	if err := a.Set("train.lr", "5e-4"); err != nil {
		fmt.Println(err)
	}
	if err := b.Set("train.lr", "0.0005"); err != nil {
		fmt.Println(err)
	}
	fmt.Println(a.Hash() == b.Hash(), a.Hash() == config.Default().Hash())

	err := a.Set("train.learning_rate", "1e-3")
	fmt.Println(err)

	a.Train.LR = -1
	fmt.Println(a.Validate())
	// Output:
	// true false
	// --set: train.learning_rate: unknown key (did you mean "train.lr"?)
	// train.lr: must be > 0, got -1
}
