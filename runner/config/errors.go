package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FieldError is one problem with one key of a config or sweep file.
//
// Its text is "File:Line: Field: Msg"; parts that are unknown are left out, so an error from
// Validate reads "train.lr: must be > 0, got -0.001" and one from LoadFile reads
// "configs/x.toml:7: train.lr: must be > 0, got -0.001".
type FieldError struct {
	File  string // the file, or "--set" for a command-line override; may be empty
	Line  int    // 1-based; 0 when unknown
	Field string // dotted key, e.g. "train.lr"; may be empty for whole-file problems
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one pass, so a person can fix them all at once.
// Use errors.As to get it, or a *FieldError in it, out of a wrapped error.
type ErrorList []*FieldError

// Error lists the errors one per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors, so errors.As finds a *FieldError in the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Err returns nil for an empty list, else the list sorted by file, line and field with exact
// repeats removed. Return it as an error rather than the list itself, so that nil stays nil.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	l = slices.Clone(l)
	slices.SortStableFunc(l, func(a, b *FieldError) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Field, b.Field))
	})
	l = slices.CompactFunc(l, func(a, b *FieldError) bool { return *a == *b })
	return l
}

func (l *ErrorList) add(field, format string, args ...any) {
	*l = append(*l, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}
