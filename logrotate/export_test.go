package logrotate

// OnRemove makes the clean-up of w's log call f with each file's path
// just before removing it (under the log's read lock: f may read the file,
// not write to the log). Tests count the lines removed by policy with it.
func OnRemove(w *Writer, f func(path string)) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.onRemove = f
}

// WhileCurrent runs f with the current file's name while no rotation nor
// re-creation can switch files (writes wait too), so that a test deleting
// or renaming the file knows it was the current one.
func WhileCurrent(w *Writer, f func(name string)) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	f(w.f.name)
}

// AfterBulkCopy makes every later re-creation of w's log call f between the
// copy of the deleted file's bulk and that of its tail, without the log's
// lock (f may rotate, or delete the re-created file).
func AfterBulkCopy(w *Writer, f func()) {
	w.f.checkMu.Lock()
	defer w.f.checkMu.Unlock()
	w.f.afterBulkCopy = f
}
