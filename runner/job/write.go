package job

import "github.com/ddpmlab/ddpmlab/runner/store"

// writeFile writes a run file atomically.
func writeFile(path string, data []byte) error { return store.WriteFileAtomic(path, data, 0o644) }
