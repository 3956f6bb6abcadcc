//go:build !unix

package main

import "os"

// restoreOwner has no uid and gid to put back where the system has none.
func restoreOwner(string, os.FileInfo) error { return nil }
