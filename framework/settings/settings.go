// Package settings turns a service's own settings — a struct of typed
// fields with names, defaults and help — into flags of the service's flag
// set, so they are parsed, listed by --help and read from WARREN_*
// variables and the --config file exactly like the framework's own
// (package config).
//
//	type Settings struct {
//		MaxCharge int           `setting:"max-charge" help:"largest charge in cents"`
//		Ledger    string        `setting:"ledger-url" help:"the ledger's base URL"`
//		Timeout   time.Duration `help:"ledger call timeout"` // flag --timeout
//	}
//
// A field's value when Bind is called is its default. A struct with a
// Validate() error method is checked after parsing (Validate).
package settings

import (
	"errors"
	"flag"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/warren-mesh/warren/internal/kebab"
)

// Bind adds a flag to fs for every exported field of the struct ptr
// points to. The flag's name is the field's `setting` tag, or the field
// name in kebab case (MaxCharge → max-charge); its usage is the `help`
// tag. Supported field types: string, bool, int, int64, uint, uint64,
// float64, time.Duration and []string (comma-separated), and named types
// of those. A field tagged `setting:"-"` is skipped. The error names every
// field that cannot be a flag.
func Bind(fs *flag.FlagSet, ptr any) error {
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("settings: want a pointer to a struct, got %T", ptr)
	}
	v = v.Elem()
	t := v.Type()
	var errs []error // every field's problem at once, not one per start
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name := f.Tag.Get("setting")
		if name == "-" {
			continue
		}
		if name == "" {
			name = kebab.Case(f.Name)
		}
		if fs.Lookup(name) != nil {
			errs = append(errs, fmt.Errorf("settings: %s.%s: flag --%s is already defined (by the framework or another field); name it with a `setting:\"…\"` tag", t.Name(), f.Name, name))
			continue
		}
		val, err := newValue(v.Field(i))
		if err != nil {
			errs = append(errs, fmt.Errorf("settings: %s.%s: %w", t.Name(), f.Name, err))
			continue
		}
		fs.Var(val, name, f.Tag.Get("help"))
	}
	return errors.Join(errs...)
}

// Validate runs ptr's Validate method, if it has one.
func Validate(ptr any) error {
	if v, ok := ptr.(interface{ Validate() error }); ok {
		return v.Validate()
	}
	return nil
}

// value is a flag.Value over one struct field.
type value struct{ f reflect.Value }

var durationType = reflect.TypeOf(time.Duration(0))

func newValue(f reflect.Value) (flag.Value, error) {
	switch {
	case f.Type() == durationType:
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
	default:
		switch f.Kind() {
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64, reflect.Float64:
		default:
			return nil, fmt.Errorf("type %s is not supported; use string, bool, int, int64, uint, uint64, float64, time.Duration or []string", f.Type())
		}
	}
	return value{f}, nil
}

func (v value) String() string {
	if !v.f.IsValid() {
		return ""
	}
	switch {
	case v.f.Type() == durationType:
		return time.Duration(v.f.Int()).String()
	case v.f.Kind() == reflect.Slice:
		parts := make([]string, v.f.Len())
		for i := range parts {
			parts[i] = v.f.Index(i).String()
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.f.Interface())
}

func (v value) Set(s string) error {
	f := v.f
	switch {
	case f.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("want a duration such as 500ms or 2s")
		}
		f.SetInt(int64(d))
		return nil
	case f.Kind() == reflect.Slice:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		sl := reflect.MakeSlice(f.Type(), len(parts), len(parts))
		for i, p := range parts {
			sl.Index(i).SetString(p)
		}
		f.Set(sl)
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("want true or false")
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return errors.New("want an integer")
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("want a non-negative integer")
		}
		f.SetUint(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errors.New("want a number")
		}
		f.SetFloat(x)
	}
	return nil
}

// IsBoolFlag lets --flag stand for --flag=true on bool fields.
func (v value) IsBoolFlag() bool { return v.f.IsValid() && v.f.Kind() == reflect.Bool }
