package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/mod/modfile"
)

// compilerFileRE finds the file of a line of the go command's report
// ("vet: " first when go vet type-checked it).
var compilerFileRE = regexp.MustCompile(`^(?:vet: )?(\S+\.go):\d+(?::\d+)?: `)

// outsideNotes names the files of a compiler report that are not in the
// project at root — in a module go.mod replaces with a directory (a
// checkout someone else may be editing), in the module cache, in GOROOT —
// one note per module, so the user does not look for the fault in their
// own code. onlyOutside: every file the report names is outside.
func outsideNotes(root, out string) (notes []string, onlyOutside bool) {
	replaced := dirReplaces(root)
	inside, outside := 0, 0
	said := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		m := compilerFileRE.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil || moduleErrRE.MatchString(l) {
			continue // a go.mod/go.sum problem is the project's: moduleNote
		}
		file := m[1]
		abs := file
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(root, abs) // the go command ran in root
		}
		if rel, err := filepath.Rel(root, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			inside++
			continue
		}
		outside++
		dir, mod := moduleOf(filepath.Dir(abs))
		if said[dir] {
			continue
		}
		said[dir] = true
		var where, fix string
		switch version := versionOf(dir); {
		case mod == "":
			where, fix = dir, "make it compile"
		case replaced[mod]:
			where, fix = fmt.Sprintf("module %s at %s, where your go.mod's replace points", mod, dir), "make that checkout compile again (or point the replace elsewhere)"
		case version != "":
			where, fix = fmt.Sprintf("module %s@%s in the module cache", mod, version), "require a version of it that compiles (go get)"
		default:
			where, fix = fmt.Sprintf("module %s at %s", mod, dir), "make that module compile"
		}
		notes = append(notes, fmt.Sprintf("%s: not in this project but in %s; neither svcgen's code nor yours is at fault: %s, then run gen again", file, where, fix))
	}
	return notes, outside > 0 && inside == 0
}

// moduleErrRE finds the go command's reports that the project's go.mod or
// go.sum lacks a module the build needs. They name the file whose import
// needs it, which may be in a replaced checkout that gained a dependency:
// its requirements are resolved in the project, so the fix is there. The
// last one is vet's report of a package the go command could not load.
var moduleErrRE = regexp.MustCompile(`missing go\.sum entry|no required module provides package|cannot find module providing package|updates to go\.mod needed|could not import \S+ \(open : no such file or directory\)`)

// moduleNote is the note for a report with go.mod/go.sum problems: run go
// mod tidy in the project; "" without any. only: no other error in the
// report names a file.
func moduleNote(root, out string) (note string, only bool) {
	mod, other := 0, 0
	for _, l := range strings.Split(out, "\n") {
		switch {
		case moduleErrRE.MatchString(l):
			mod++
		case compilerFileRE.MatchString(strings.TrimSpace(l)):
			other++
		}
	}
	if mod == 0 {
		return "", false
	}
	return fmt.Sprintf("the project's go.mod or go.sum does not list every module this code needs (a replaced checkout that gained a dependency does this too); neither svcgen's code nor yours is at fault: run `go mod tidy` in %s, then run gen again", root), other == 0
}

// causes are the notes on a compiler report's failures that are not the
// project's code (outsideNotes, moduleNote), and the headline's ending
// when no failure is: why the code does not compile. imports, needs: the
// verbs with their subject ("it imports", "they need").
func causes(root, out, imports, needs string) (notes []string, why string) {
	notes, onlyOutside := outsideNotes(root, out)
	mod, onlyModule := moduleNote(root, out)
	if mod != "" {
		notes = append(notes, mod)
	}
	switch {
	case onlyModule:
		why = ", because the project's go.mod or go.sum does not list a module " + needs + " (your code is not at fault)"
	case onlyOutside:
		why = ", because code " + imports + " from outside this project does not (your code is not at fault)"
	}
	return notes, why
}

// moduleOf is the module of a directory outside the project: the nearest
// directory at or above dir with a go.mod, and its module path. A module
// in the module cache without a go.mod (an old one) ends at the
// directory named path@version; mod is "" when no module is found.
func moduleOf(dir string) (modDir, mod string) {
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			if m := modfile.ModulePath(b); m != "" {
				return d, m
			}
		}
		if strings.Contains(filepath.Base(d), "@") {
			return d, ""
		}
		if filepath.Dir(d) == d {
			return dir, ""
		}
	}
}

// versionOf is the version of a module in the module cache, whose
// directory is named path@version; "" elsewhere.
func versionOf(modDir string) string {
	if _, v, ok := strings.Cut(filepath.Base(modDir), "@"); ok {
		return v
	}
	return ""
}

// dirReplaces are the modules the project's go.mod replaces with a
// directory.
func dirReplaces(root string) map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return out
	}
	f, err := modfile.Parse("go.mod", b, nil) // not ParseLax, which skips replace lines
	if err != nil {
		return out
	}
	for _, r := range f.Replace {
		if r.New.Version == "" {
			out[r.Old.Path] = true
		}
	}
	return out
}
