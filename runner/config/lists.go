package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// IntList parses the value of a list key (model.attention, model.channel_mult): integers
// separated by commas, optionally in brackets ("7,14", "7, 14", "[7, 14]"); "" and "[]" are
// the empty list.
func IntList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", strings.TrimSpace(part))
		}
		out = append(out, n)
	}
	return out, nil
}

// formatIntList is the canonical spelling of a list key's value: "7,14", no spaces.
func formatIntList(list []int) string {
	parts := make([]string, len(list))
	for i, n := range list {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// listString turns a decoded value for a list key into its canonical string, so that every
// spelling of one list hashes the same: a string ("14, 7", "[7,14]"), an integer (7) or a TOML
// list of integers ([7, 14]). A set (sorted) is kept in ascending order; a duplicate is kept,
// for Validate to report. ok is false for anything else.
func listString(v any, sorted bool) (string, bool) {
	var list []int
	switch x := v.(type) {
	case string:
		l, err := IntList(x)
		if err != nil {
			return "", false
		}
		list = l
	case int64:
		list = []int{int(x)}
	case []any:
		for _, e := range x {
			n, ok := e.(int64)
			if !ok {
				return "", false
			}
			list = append(list, int(n))
		}
	default:
		return "", false
	}
	if sorted {
		slices.Sort(list)
	}
	return formatIntList(list), true
}
