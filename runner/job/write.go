package job

import "github.com/ddpmlab/ddpmlab/ddpm/durable"

// writeFile writes a run file durably and atomically.
func writeFile(path string, data []byte) error { return durable.WriteFile(path, data, 0o644) }
