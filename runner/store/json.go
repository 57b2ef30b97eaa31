package store

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// WriteJSON writes v as indented JSON (with a final newline) to path with durable.WriteFile.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return durable.WriteFile(path, append(data, '\n'), 0o644)
}

// ReadJSON decodes the JSON file at path into v. Unknown fields are ignored, so a store
// written by a newer runner stays readable. The error names the file;
// errors.Is(err, fs.ErrNotExist) reports a missing file.
func ReadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err // *PathError already names the file
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
