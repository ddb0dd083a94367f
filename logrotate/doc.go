// Package logrotate writes rotating log files: an io.Writer (and a logrus
// hook) that starts a new file by time and by size, removes old files by
// age or count, and keeps a symlink to the current file.
//
// # What file-rotatelogs does, and what is done here
//
// github.com/lestrrat-go/file-rotatelogs (v2.4.0, archived upstream) has
// one job here: naming and creating the next file. At each rotation its
// Rotate truncates the clock to the period on local wall-clock time,
// formats the strftime pattern, adds a ".N" suffix when a file of that
// name exists, and creates the file; CurrentFileName tells which. That is
// all it is used for: its Write, its symlink and its clean-up are not
// used, because of its known defects:
//
//   - #18: its Write reads the clock, builds a file name and stats the
//     file on every call, under its lock. Here a write is a shared (read)
//     lock, two atomic loads and one append to the open file: a timer
//     marks the end of the period, the name is built and the file opened
//     once per rotation.
//   - #58: with a rotation count, at the tenth size rotation it deletes
//     the file it is writing (".10" sorts before ".9"). #65/#66: its
//     clean-up glob misses ".N" files when the pattern has text after the
//     date, and catches foreign files that merely fit the glob. Here
//     clean-up never touches the current file, orders files by
//     modification time and generation number, and removes only names
//     this log produces (the pattern, field by field, plus an optional
//     ".N"), while no rotation can happen.
//   - #19/#22: a current file deleted from outside is never recreated.
//     Here a background check (Config.CheckEvery, or Writer.Check)
//     recreates it; see "No accepted line is lost" below.
//   - Writes after Close are dropped. Here they still land (in the log if
//     another Writer keeps it open, else on Config.ErrorOutput) and are
//     counted.
//   - Two writers on one file in one process race their rotations. Here
//     Open returns Writers sharing one log per file pattern; the last
//     Close closes it.
//
// Three things remain around Rotate because that one call does more than
// naming: its clean-up cannot be turned off, so it gets a maximum age no
// file reaches (200 years); it keeps a descriptor of its own on the file
// it created, which is closed right after (the file is written through
// this package's descriptor); and it refuses to rotate while a
// "<file>_lock" exists, which a process killed in the middle of a
// rotation leaves behind, so stale lock files of this log are removed when
// a rotation fails on one. Its symlink (and the lock-file dance around
// it) is not used: the symlink here is replaced atomically (temporary
// link + rename).
//
// # No accepted line is lost
//
// A Write that returned no error is in one of the log's files, whole and
// once, unless clean-up later removed that file by policy (MaxFiles,
// MaxAge). In particular:
//
//   - a current file deleted from outside keeps being written through the
//     descriptor still open on it, and its whole content (lines written
//     before and since the deletion) is copied into the file that
//     replaces it: the re-created file (at the next check), the next file
//     (when a rotation comes first), or a file re-created at Close;
//   - when the file cannot be re-created (its directory unusable), writing
//     goes on to the deleted file, the failed check is counted in
//     Stats.CheckErrors and reported once, and the next successful check
//     salvages everything;
//   - a current file renamed away keeps the lines written before the
//     check noticed (they are in the renamed file).
//
// A failing write (disk full) returns its error, is counted in
// Stats.WriteErrors, and is reported on Config.ErrorOutput once per
// episode; it never panics and never blocks beyond the write itself.
//
// Each log has one background goroutine (the periodic check and the
// clean-up). The last Close stops it and waits for it; a panic in it is
// reported on Config.ErrorOutput with its stack, and it goes on.
package logrotate
