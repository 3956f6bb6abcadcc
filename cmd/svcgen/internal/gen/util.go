package gen

import (
	"go/token"
	"strconv"
)

func position(file string, line int) token.Position {
	return token.Position{Filename: file, Line: line}
}

func itoa(n int) string { return strconv.Itoa(n) }

func quote(s string) string { return strconv.Quote(s) }
