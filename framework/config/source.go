package config

import (
	"flag"
	"io"
	"strconv"
	"strings"
)

// A value that passed its flag's Set can still fail validation (--weight
// -1, --log-format xml). Its error then named the flag but not where the
// value came from, and with three sources an operator looked in the wrong
// one. ParseWith annotates such errors the way bad values are reported:
//
//	config: --weight -1 (from WARREN_WEIGHT): must not be negative
//	config: --log-format "xml" (key log-format of /etc/user.yaml): want logfmt or json
//
// A value from the command line carries no note, as in parse errors.

// sources says where each flag set by a Parse got its value: a note for a
// variable or the --config file, "" for the command line; a flag left at
// its default is absent.
func sources(fs *flag.FlagSet, args []string, st *parseState) map[string]string {
	onCommandLine := commandLineFlags(fs, args)
	file := ""
	if f := fs.Lookup("config"); f != nil {
		file = f.Value.String()
	}
	out := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		switch key, fromFile := st.fileKeys[f.Name]; {
		case onCommandLine[f.Name]:
			out[f.Name] = ""
		case fromFile:
			out[f.Name] = "key " + key + " of " + file
		default: // ff sets only the flag line, variables and the file
			out[f.Name] = "from " + EnvName(f.Name)
		}
	})
	return out
}

// commandLineFlags parses args again, into a flag set that only notes the
// names, to tell the command line's values from those ff set after it.
func commandLineFlags(fs *flag.FlagSet, args []string) map[string]bool {
	seen := map[string]bool{}
	shadow := flag.NewFlagSet("", flag.ContinueOnError)
	shadow.SetOutput(io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		shadow.Var(noteSet{name: f.Name, seen: seen, isBool: ok && b.IsBoolFlag()}, f.Name, "")
	})
	_ = shadow.Parse(args) // fs parsed the same args without error
	return seen
}

// noteSet is a flag.Value that only notes it was set.
type noteSet struct {
	name   string
	seen   map[string]bool
	isBool bool
}

func (n noteSet) Set(string) error { n.seen[n.name] = true; return nil }
func (n noteSet) String() string   { return "" }
func (n noteSet) IsBoolFlag() bool { return n.isBool }

// sourcedError is a validation error whose text names where the values of
// the flags it mentions came from; errors.Is and As see the original.
type sourcedError struct {
	err  error
	text string
}

func (e *sourcedError) Error() string { return e.text }
func (e *sourcedError) Unwrap() error { return e.err }

// withSources annotates err: after the first mention of each flag not set
// on the command line, and after its value when the value follows, the
// note of src. err is returned as it is when there is nothing to add.
func withSources(err error, fs *flag.FlagSet, src map[string]string) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	type insert struct {
		at   int
		note string
	}
	var ins []insert
	done := map[string]bool{}
	for i := 0; i+2 < len(text); i++ {
		if text[i] != '-' || text[i+1] != '-' || (i > 0 && isNameByte(text[i-1])) {
			continue
		}
		end := i + 2
		for end < len(text) && isNameByte(text[end]) {
			end++
		}
		name := text[i+2 : end]
		note := src[name]
		if note == "" || done[name] {
			i = end - 1
			continue
		}
		done[name] = true
		ins = append(ins, insert{afterValue(text, end, fs.Lookup(name)), " (" + note + ")"})
		i = end - 1
	}
	if len(ins) == 0 {
		return err
	}
	var b strings.Builder
	last := 0
	for _, in := range ins {
		b.WriteString(text[last:in.at])
		b.WriteString(in.note)
		last = in.at
	}
	b.WriteString(text[last:])
	return &sourcedError{err: err, text: b.String()}
}

// afterValue is where a note goes for a flag named in text just before
// at: after its value when the value follows (quoted, or as the flag
// prints it), else right after the name.
func afterValue(text string, at int, f *flag.Flag) int {
	if f == nil || !strings.HasPrefix(text[at:], " ") {
		return at
	}
	rest := text[at+1:]
	if q, err := strconv.QuotedPrefix(rest); err == nil {
		return at + 1 + len(q)
	}
	if v := f.Value.String(); v != "" && strings.HasPrefix(rest, v) {
		if n := len(v); n == len(rest) || strings.ContainsRune(" :;,", rune(rest[n])) {
			return at + 1 + n
		}
	}
	return at
}

func isNameByte(c byte) bool {
	return c == '-' || c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// sourceNotes is what withSources needs, kept on the Config Parse returns.
type sourceNotes struct {
	fs  *flag.FlagSet
	src map[string]string
}

// NameSources annotates err, an error about flags met after Parse (a
// certificate file a flag names that cannot be read, an unwritable
// --snapshot-dir), as Parse annotates its own validation errors: each flag
// it mentions whose value came from a variable or the --config file gets
// (from WARREN_…) or (key … of FILE) after it, or after its value when the
// value follows. errors.Is and As see err. A Config Parse did not make
// returns err as it is.
func (c Config) NameSources(err error) error {
	if c.sources == nil {
		return err
	}
	return withSources(err, c.sources.fs, c.sources.src)
}
