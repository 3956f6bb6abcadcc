package redact

import "testing"

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://svc:PW@127.0.0.1:1":          "http://xxxxx@127.0.0.1:1",
		"http://TOKEN@127.0.0.1:1/":          "http://xxxxx@127.0.0.1:1/",
		"https://127.0.0.1:1/?token=PW":      "https://127.0.0.1:1/?xxxxx",
		"https://h:1/v1/traces?token=PW#PW2": "https://h:1/v1/traces?xxxxx#xxxxx",
		"https://h:1#PW":                     "https://h:1#xxxxx",
		"https://h:1/a#b?PW":                 "https://h:1/a#xxxxx",
		"http://u:p@w@[::bad":                "http://xxxxx@[::bad",
		"svc:PW@127.0.0.1:2379":              "xxxxx@127.0.0.1:2379",
		"127.0.0.1:2379":                     "127.0.0.1:2379",
		"https://etcd.example:2379/":         "https://etcd.example:2379/",
		"unix:///run/etcd.sock":              "unix:///run/etcd.sock",
		"":                                   "",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}
