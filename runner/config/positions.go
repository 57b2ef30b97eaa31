package config

import (
	"strconv"
	"strings"
)

// Positions maps the keys of a TOML document to the lines they are written on.
//
// BurntSushi/toml reports positions for syntax errors only, so Positions is built by a small
// scanner of its own. A path is the key's pieces joined by dots, with the index of an
// [[array]] table or of an array element as a piece of its own:
//
//	train.lr                 lr in [train], or "train.lr" = … at the top level
//	grid.train.lr            "train.lr" = […] in [grid]
//	grid.train.lr.2          the third value of that list
//	zip.1.train.epochs       "train.epochs" in the second [[zip]] table
//
// Quoted and dotted spellings of a key give the same path, so both of their lines are kept.
type Positions map[string][]int

// ScanPositions returns the line of every key, table header and array element in data.
// It is meant for documents that BurntSushi/toml has already parsed without error; on
// malformed input it returns what it found before getting lost, and never panics.
func ScanPositions(data []byte) Positions {
	s := &scanner{src: data, line: 1, pos: Positions{}, arrays: map[string]int{}}
	s.document()
	return s.pos
}

// Line returns the first line of path, else of its nearest parent that has one (so an error in
// a value of an inline table points at the table), else 0.
func (p Positions) Line(path string) int {
	for {
		if ls := p[path]; len(ls) > 0 {
			return ls[0]
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}

// scanner is a recursive-descent reader of just enough TOML to know where keys are.
type scanner struct {
	src    []byte
	i      int
	line   int
	pos    Positions
	arrays map[string]int // [[array]] header (without indexes) -> index of its last table
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *scanner) next() byte {
	c := s.src[s.i]
	s.i++
	if c == '\n' {
		s.line++
	}
	return c
}

func (s *scanner) record(path []string, line int) {
	k := strings.Join(path, ".")
	s.pos[k] = append(s.pos[k], line)
}

// skipSpace skips blanks and comments, and newlines too when nl is set.
func (s *scanner) skipSpace(nl bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			s.next()
		case c == '\n' && nl:
			s.next()
		case c == '#':
			for !s.eof() && s.peek() != '\n' {
				s.next()
			}
		default:
			return
		}
	}
}

func (s *scanner) document() {
	var table []string
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		start := s.i
		if s.peek() == '[' {
			table = s.header()
		} else {
			s.keyValue(table)
		}
		if s.i == start { // no progress: malformed input
			s.next()
		}
		// Anything left on the line (a stray token) is skipped.
		for !s.eof() && s.peek() != '\n' && s.peek() != '#' {
			s.next()
		}
	}
}

// header reads [a.b] or [[a.b]] and returns the path that keys below it live under.
func (s *scanner) header() []string {
	line := s.line
	s.next()
	array := s.peek() == '['
	if array {
		s.next()
	}
	s.skipSpace(false)
	key := s.key()
	for !s.eof() && s.peek() == ']' {
		s.next()
	}
	var path, raw []string
	for i, k := range key {
		raw = append(raw, k)
		path = append(path, k)
		r := strings.Join(raw, ".")
		if array && i == len(key)-1 {
			n, seen := s.arrays[r]
			if seen {
				n++
			}
			s.arrays[r] = n
			s.record(path, line)
			path = append(path, strconv.Itoa(n))
			break
		}
		if n, ok := s.arrays[r]; ok {
			path = append(path, strconv.Itoa(n))
		}
	}
	s.record(path, line)
	return path
}

// key reads a dotted key (bare, "basic" or 'literal' pieces) and returns its pieces.
func (s *scanner) key() []string {
	var pieces []string
	for {
		s.skipSpace(false)
		var p string
		switch s.peek() {
		case '"':
			p = s.basicString()
		case '\'':
			p = s.literalString()
		default:
			st := s.i
			for !s.eof() && isBare(s.peek()) {
				s.next()
			}
			p = string(s.src[st:s.i])
		}
		pieces = append(pieces, p)
		s.skipSpace(false)
		if s.peek() != '.' {
			return pieces
		}
		s.next()
	}
}

func isBare(c byte) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (s *scanner) keyValue(table []string) {
	line := s.line
	key := s.key()
	path := append(append([]string(nil), table...), key...)
	s.record(path, line)
	s.skipSpace(false)
	if s.peek() != '=' {
		return
	}
	s.next()
	s.skipSpace(false)
	s.value(path)
}

// value skips one value, recording the lines of array elements and inline-table keys.
func (s *scanner) value(path []string) {
	switch c := s.peek(); c {
	case '"':
		s.basicString()
	case '\'':
		s.literalString()
	case '[':
		s.next()
		for n := 0; ; n++ {
			s.skipSpace(true)
			if s.eof() || s.peek() == ']' {
				break
			}
			s.record(append(path, strconv.Itoa(n)), s.line)
			st := s.i
			s.value(append(path, strconv.Itoa(n)))
			s.skipSpace(true)
			if s.peek() == ',' {
				s.next()
			} else if s.i == st {
				s.next() // malformed: make progress
			}
		}
		if !s.eof() {
			s.next()
		}
	case '{':
		s.next()
		for {
			s.skipSpace(true)
			if s.eof() || s.peek() == '}' {
				break
			}
			st := s.i
			s.keyValue(path)
			s.skipSpace(true)
			if s.peek() == ',' {
				s.next()
			} else if s.i == st {
				s.next()
			}
		}
		if !s.eof() {
			s.next()
		}
	default: // number, bool, date: up to a delimiter
		for !s.eof() {
			switch s.peek() {
			case ',', ']', '}', '\n', '#', '\r':
				return
			case ' ', '\t':
				// A local date-time may hold one space ("1979-05-27 07:32:00").
				if s.i+1 < len(s.src) && s.src[s.i+1] >= '0' && s.src[s.i+1] <= '9' {
					s.next()
					continue
				}
				return
			}
			s.next()
		}
	}
}

// basicString reads "…" or """…""" and returns its (unescaped, best-effort) text.
func (s *scanner) basicString() string {
	if s.hasPrefix(`"""`) {
		s.i += 3
		st := s.i
		for !s.eof() && !s.hasPrefix(`"""`) {
			if s.next() == '\\' && !s.eof() {
				s.next()
			}
		}
		text := string(s.src[st:s.i])
		s.skipRun('"')
		return text
	}
	st := s.i
	s.next()
	for !s.eof() && s.peek() != '"' && s.peek() != '\n' {
		if s.next() == '\\' && !s.eof() && s.peek() != '\n' {
			s.next()
		}
	}
	if !s.eof() && s.peek() == '"' {
		s.next()
	}
	if u, err := strconv.Unquote(string(s.src[st:s.i])); err == nil {
		return u
	}
	return strings.Trim(string(s.src[st:s.i]), `"`)
}

// literalString reads '…' or ”'…”' and returns its text.
func (s *scanner) literalString() string {
	if s.hasPrefix(`'''`) {
		s.i += 3
		st := s.i
		for !s.eof() && !s.hasPrefix(`'''`) {
			s.next()
		}
		text := string(s.src[st:s.i])
		s.skipRun('\'')
		return text
	}
	s.next()
	st := s.i
	for !s.eof() && s.peek() != '\'' && s.peek() != '\n' {
		s.next()
	}
	text := string(s.src[st:s.i])
	if !s.eof() && s.peek() == '\'' {
		s.next()
	}
	return text
}

// skipRun skips the closing quotes of a multi-line string (up to five: two may belong to it).
func (s *scanner) skipRun(q byte) {
	for n := 0; n < 5 && !s.eof() && s.peek() == q; n++ {
		s.next()
	}
}

func (s *scanner) hasPrefix(p string) bool {
	return strings.HasPrefix(string(s.src[s.i:min(len(s.src), s.i+len(p))]), p)
}
