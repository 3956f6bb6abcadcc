package settings

import (
	"strings"
	"testing"
)

// A value in the --config file is the text written there, as the same
// value given as a flag or a variable is: YAML's reading of it as a
// number or a date changed it on the way, so `version: 1.10` published
// version 1.1, `zone: 012` zone 10 (octal), `id: 1e3` id 1000.
func TestYAMLParser_ValuesAreTheTextAsWritten(t *testing.T) {
	got := map[string]string{}
	set := func(k, v string) error { got[k] = v; return nil }
	in := "version: 1.10\nzone: 012\nid: 1e3\nweight: 2.0\nday: 2024-01-01\nquoted: \"1.10\"\nempty:\nnull-word: \"null\"\nlive: true\n" +
		"tags: [1.10, 012, blue]\nanchor: &a 1.50\nalias: *a\n"
	if err := YAMLParser(strings.NewReader(in), set); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"version": "1.10", "zone": "012", "id": "1e3", "weight": "2.0", "day": "2024-01-01", "quoted": "1.10",
		"empty": "", "null-word": "null", "live": "true", "tags": "1.10,012,blue", "anchor": "1.50", "alias": "1.50",
	} {
		if got[k] != want {
			t.Errorf("%s: set to %q, want %q as written", k, got[k], want)
		}
	}
}

// What the parser cannot set as written is refused, naming it, not left
// out: a second YAML document (its keys were never read), a key given
// twice, a file that is not a mapping.
func TestYAMLParser_RefusesWhatItWouldLeaveOut(t *testing.T) {
	set := func(k, v string) error { return nil }
	for _, c := range []struct{ in, want string }{
		{"listen: \":9000\"\n---\ngrace: 5s\n", "second YAML document"},
		{"grace: 5s\ngrace: 7s\n", `key "grace" appears twice`},
		{"- listen\n- grace\n", "want a mapping"},
		{"tags: [[a, b]]\n", `key "tags": a list of lists`},
	} {
		if err := YAMLParser(strings.NewReader(c.in), set); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want one saying %q", c.in, err, c.want)
		}
	}
	// An empty file, or one of comments only, sets nothing.
	for _, in := range []string{"", "# nothing yet\n", "---\n"} {
		if err := YAMLParser(strings.NewReader(in), set); err != nil {
			t.Errorf("%q: %v, want nothing set and no error", in, err)
		}
	}
}
