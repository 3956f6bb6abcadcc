package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"

	svcsettings "github.com/warren-mesh/warren/framework/settings"
)

// The standard flag values answer a bad value with "parse error" and the
// flag package prints the whole usage before it: an operator sees 70 lines
// and no hint of the form wanted. Parse wraps every flag's value so that a
// bad one is reported once, last, as
//
//	config: --grace "5": want a duration such as 5s or 1m30s
//	config: --drain-timeout "abc" (from WARREN_DRAIN_TIMEOUT): want a duration such as 5s or 1m30s
//	config: --grace "5" (key grace of /etc/user.yaml): want a duration such as 5s or 1m30s

// wants are the forms flags of a given type take, said the way package
// settings says them for a service's own settings.
func want(name string, v any) string {
	if name == "max-body-bytes" {
		return "want a whole number of bytes such as 1048576"
	}
	switch v.(type) {
	case time.Duration:
		return "want a duration such as 5s or 1m30s"
	case bool:
		return "want true or false"
	case int, int64:
		return "want an integer"
	case uint, uint64:
		return "want a non-negative integer"
	case float64:
		return "want a number"
	}
	return ""
}

// valueError is a value a flag's Set refused, with where it came from.
type valueError struct {
	flag, value string
	key, file   string // set when it came from the --config file
	msg         string // what the value should have been
}

func (e *valueError) Error() string { return fmt.Sprintf("--%s %q: %s", e.flag, e.value, e.msg) }

// parseState follows one Parse: the --config key being set (empty outside
// the file) and the last value a flag refused.
type parseState struct {
	key  string
	last *valueError
	// fileKeys are the flags the --config file set, with their keys, for
	// the source of a value that fails validation (source.go).
	fileKeys map[string]string
}

// checkedValue is a flag.Value whose Set errors say which flag and what
// form it wants. It keeps the wrapped value's Get and IsBoolFlag, so a
// bool flag still needs no argument.
type checkedValue struct {
	flag.Value
	name string
	st   *parseState
}

func (v *checkedValue) Set(s string) error {
	err := v.Value.Set(s)
	if err == nil {
		if v.st.key != "" {
			if v.st.fileKeys == nil {
				v.st.fileKeys = map[string]string{}
			}
			v.st.fileKeys[v.name] = v.st.key
		}
		return nil
	}
	msg := err.Error()
	if g, ok := v.Value.(flag.Getter); ok {
		if w := want(v.name, g.Get()); w != "" {
			switch msg {
			case "parse error": // the flag package's errParse: say what parses
				msg = w
			case "value out of range":
				msg = "out of range; " + w
			}
		}
	}
	ve := &valueError{flag: v.name, value: s, key: v.st.key, msg: msg}
	v.st.last = ve
	return ve
}

func (v *checkedValue) String() string {
	if v == nil || v.Value == nil {
		return ""
	}
	return v.Value.String()
}

func (v *checkedValue) Get() any {
	if g, ok := v.Value.(flag.Getter); ok {
		return g.Get()
	}
	return v.Value.String()
}

func (v *checkedValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// checkValues wraps every flag of fs in a checkedValue.
func checkValues(fs *flag.FlagSet, st *parseState) {
	fs.VisitAll(func(f *flag.Flag) { f.Value = &checkedValue{Value: f.Value, name: f.Name, st: st} })
}

// yamlParser is the --config parser, noting which key is being set.
func (st *parseState) yamlParser(r io.Reader, set func(name, value string) error) error {
	defer func() { st.key = "" }()
	err := svcsettings.YAMLParser(r, func(name, value string) error {
		st.key = name
		return set(name, value)
	})
	var ve *valueError
	if err != nil && !errors.As(err, &ve) && !strings.Contains(err.Error(), "config file flag ") {
		return &fileError{err} // the file's own fault: parseError names it
	}
	return err
}

// fileError is what the --config file itself got wrong (not YAML, a
// second document, a key given twice), for parseError to name the file.
type fileError struct{ err error }

func (e *fileError) Error() string { return e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

// ParseFlags parses args and the WARREN_* variables into fs (a flag wins
// over its variable) as a service's Parse does, for a command that has
// flags of its own (the warren CLI): nothing is printed, -h returns
// flag.ErrHelp for the caller to print its usage, and a bad value is one
// line naming the flag, where the value came from and the form wanted
// (--debounce "abc": want a duration such as 5s or 1m30s), not the flag
// package's "parse error".
func ParseFlags(fs *flag.FlagSet, args []string) error {
	st := &parseState{}
	checkValues(fs, st)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := ff.Parse(fs, args, ff.WithEnvVarPrefix(EnvPrefix))
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return parseError(err, st, fs, "") // the command says where help is
}

// parseError turns what ff.Parse returned into one line that names the
// flag with the dashes the documentation uses, where the value came from
// and what was wanted; help, when not empty, is the flag that lists the
// others.
func parseError(err error, st *parseState, fs *flag.FlagSet, help string) error {
	var ve *valueError
	var fe *fileError
	switch {
	case errors.As(err, &fe):
		file := ""
		if f := fs.Lookup("config"); f != nil {
			file = f.Value.String()
		}
		return fmt.Errorf("--config %s: %w", file, fe.err)
	case errors.As(err, &ve) && ve.key != "": // the --config file
		file := ""
		if f := fs.Lookup("config"); f != nil {
			file = f.Value.String()
		}
		return fmt.Errorf("--%s %q (key %s of %s): %s", ve.flag, ve.value, ve.key, file, ve.msg)
	case errors.As(err, &ve): // a variable: ff keeps the value's error
		return fmt.Errorf("--%s %q (from %s): %s", ve.flag, ve.value, EnvName(ve.flag), ve.msg)
	case st.last != nil && strings.Contains(err.Error(), "commandline"):
		// The flag package keeps only the text of the value's error.
		return st.last
	}
	msg := err.Error()
	if i := strings.Index(msg, "config file flag "); i >= 0 && strings.HasSuffix(msg, " not defined in flag set") {
		// ff's words for a key of the --config file that is no flag;
		// they named neither the file nor where the flags are listed
		// (report j53d finding 10).
		key := strings.TrimSuffix(msg[i+len("config file flag "):], " not defined in flag set")
		if k, err := strconv.Unquote(key); err == nil {
			key = k
		}
		file := ""
		if f := fs.Lookup("config"); f != nil {
			file = f.Value.String()
		}
		if help == "" {
			return fmt.Errorf("key %q of %s: no such flag", key, file)
		}
		return fmt.Errorf("key %q of %s: no such flag (%s lists every flag; the keys are their names)", key, file, help)
	}
	msg = strings.TrimPrefix(msg, "error parsing commandline arguments: ")
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		name = strings.TrimPrefix(name, "-")
		if help == "" {
			return fmt.Errorf("unknown flag --%s", name)
		}
		return fmt.Errorf("unknown flag --%s (%s lists every flag)", name, help)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("--%s needs a value", strings.TrimPrefix(name, "-"))
	}
	return err
}
