package store_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log"
	"os"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// A run is created from its canonical config, found again by a prefix of its hash, and
// executed under its lock.
func Example() {
	root, err := os.MkdirTemp("", "runs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	s, err := store.Open(root)
	if err != nil {
		log.Fatal(err)
	}

	canonical := []byte(`{"train":{"lr":0.0002}}`)
	sum := sha256.Sum256(canonical)
	hash := hex.EncodeToString(sum[:])
	if _, err := s.Create(hash, []byte("[train]\nlr = 0.0002\n"), canonical); err != nil {
		log.Fatal(err)
	}

	full, err := s.Resolve(hash[:6])
	if err != nil {
		log.Fatal(err)
	}
	lock, err := s.Lock(full)
	if err != nil {
		log.Fatal(err) // store.IsAlreadyLocked(err): another process runs it
	}
	if _, err := s.Begin(full, 0, 20); err != nil {
		log.Fatal(err)
	}
	// ... train, writing metrics/loss.csv and summary.json ...
	st, err := s.Finish(full, store.Done, "")
	if err != nil {
		log.Fatal(err)
	}
	if err := lock.Unlock(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(store.Short(full), st.State, st.Attempts)
	// Output: 970b0a6f4cfe done 1
}
