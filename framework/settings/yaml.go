package settings

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// YAMLParser reads a settings file for ff's config-file support (config's
// --config): a YAML mapping whose keys are flag names and whose values are
// scalars or lists of scalars (joined with commas, as []string flags take
// them). Nested mappings are refused: a key is a flag name.
//
//	listen: ":8080"
//	max-charge: 5000
//	tags: [blue, canary]
func YAMLParser(r io.Reader, set func(name, value string) error) error {
	var m map[string]any
	if err := yaml.NewDecoder(r).Decode(&m); err != nil {
		if err == io.EOF {
			return nil // an empty file sets nothing
		}
		return fmt.Errorf("YAML: %w", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var s string
		switch v := m[k].(type) {
		case map[string]any:
			return fmt.Errorf("key %q holds a mapping; use flag names as top-level keys (%s-…: value)", k, k)
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				if _, ok := p.(map[string]any); ok {
					return fmt.Errorf("key %q: a list of mappings; want a list of values", k)
				}
				parts[i] = fmt.Sprint(p)
			}
			s = strings.Join(parts, ",")
		case nil:
			s = ""
		default:
			s = fmt.Sprint(v)
		}
		if err := set(k, s); err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
	}
	return nil
}
