//go:build !unix

package logrotate

import "os"

// unlinked cannot tell on this system: a deleted file is not salvaged.
func unlinked(*os.File) bool { return false }
