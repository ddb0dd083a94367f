// Package logrotate writes rotating log files: an io.Writer (and a logrus
// hook) that starts a new file by time and by size, removes old files by
// age or count, and keeps a symlink to the current file.
//
// File names come from github.com/lestrrat-go/file-rotatelogs: at each
// rotation its Rotate picks and creates the next file (strftime pattern,
// period truncated on local wall-clock time, ".N" suffix for a second file
// within one period) and CurrentFileName tells which. Everything else is
// written here, because file-rotatelogs v2.4.0 (archived upstream) loses or
// leaks data in ways a wrapper cannot fix from outside: its write path, its
// clean-up and its symlink are not used at all (its clean-up is disabled by
// an unreachable max age, and it gets no link name). What replaces each
// defective piece, and why:
//
//   - #18: it reads the clock, builds a file name and stats the file on
//     every write, under its lock. Here a write is a shared (read) lock,
//     two atomic loads and one append to the open file: a timer marks the
//     end of the period, the name is built and the file opened once per
//     rotation.
//   - #58: with a rotation count, at the tenth size rotation it deletes
//     the file it is writing (".10" sorts before ".9"). Here clean-up never
//     touches the current file and orders files by modification time and
//     generation number.
//   - #65/#66: its clean-up glob misses ".N" files when the pattern has
//     text after the date, and catches foreign files that merely fit the
//     glob. Here clean-up removes only names this log produces: the
//     pattern, field by field, plus an optional ".N".
//   - #19/#22: a current file deleted from outside is never recreated.
//     Here a background check (Config.CheckEvery, or Writer.Check)
//     recreates it and copies the deleted file's content into it from the
//     descriptor still open on it: no line is lost.
//   - Writes after Close are dropped. Here they still land (in the log if
//     another Writer keeps it open, else on Config.ErrorOutput) and are
//     counted.
//   - A leftover "_lock" file skips the symlink update and the clean-up,
//     or blocks rotation. Here the symlink is replaced atomically
//     (temporary link + rename) without a lock file, and stale lock files
//     of this log are removed.
//   - Two writers on one file in one process race their rotations. Here
//     Open returns Writers sharing one log per file pattern; the last
//     Close closes it.
//
// A failing write (disk full, file gone) returns its error, is counted in
// Stats.WriteErrors, and is reported on Config.ErrorOutput once per
// episode; it never panics and never blocks beyond the write itself.
//
// Each log has one background goroutine (the periodic check and the
// clean-up). The last Close stops it and waits for it; a panic in it is
// reported on Config.ErrorOutput with its stack, and it goes on.
package logrotate
