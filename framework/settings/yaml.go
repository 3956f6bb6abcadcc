package settings

import (
	"errors"
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
//
// A value is the text written in the file, as a flag or a variable would
// give it: YAML's own reading of an unquoted scalar would change it on the
// way (version: 1.10 read as the number 1.1, zone: 012 as octal 10, a date
// as a time). An empty value (key:, ~, null) sets the empty string. What
// the file holds that would be left out is refused instead: a second
// document, a key given twice.
func YAMLParser(r io.Reader, set func(name, value string) error) error {
	dec := yaml.NewDecoder(r)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file sets nothing
		}
		return fmt.Errorf("YAML: %w", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("YAML: %w", err)
		}
		return fmt.Errorf("YAML: a second YAML document (line %d); put every key in one mapping", more.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return nil // a document with nothing in it
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("YAML: line %d: want a mapping of flag names to values (listen: \":8080\")", root.Line)
	}
	values := map[string]string{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := resolve(root.Content[i]), resolve(root.Content[i+1])
		if kn.Kind != yaml.ScalarNode {
			return fmt.Errorf("YAML: line %d: a key that is not a flag name", kn.Line)
		}
		k := kn.Value
		if _, dup := values[k]; dup {
			return fmt.Errorf("key %q appears twice (line %d); give it once", k, kn.Line)
		}
		s, err := text(k, vn)
		if err != nil {
			return err
		}
		values[k] = s
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := set(k, values[k]); err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
	}
	return nil
}

// text is the value of key k as a flag takes it: a scalar as written, a
// list's scalars joined with commas.
func text(k string, n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return "", nil
		}
		return n.Value, nil
	case yaml.MappingNode:
		return "", fmt.Errorf("key %q holds a mapping; use flag names as top-level keys (%s-…: value)", k, k)
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, item := range n.Content {
			item = resolve(item)
			switch item.Kind {
			case yaml.ScalarNode:
				if !isNull(item) {
					parts[i] = item.Value
				}
			case yaml.MappingNode:
				return "", fmt.Errorf("key %q: a list of mappings; want a list of values", k)
			default:
				return "", fmt.Errorf("key %q: a list of lists; want a list of values", k)
			}
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("key %q: line %d: not a value", k, n.Line)
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }
