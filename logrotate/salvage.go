package logrotate

// Salvage: the periodic check that the current file still exists, and
// its re-creation with the content of a file deleted from outside.

import (
	"errors"
	"fmt"
	"io"
	"os"
)

func (l *sharedLog) check() error {
	l.checkMu.Lock()
	defer l.checkMu.Unlock()
	l.mu.RLock()
	closed := l.closed
	due := !l.deadline.IsZero() && !l.s.now().Before(l.deadline)
	l.mu.RUnlock()
	if closed {
		return ErrClosedLog
	}
	if due {
		l.due.Store(true)
		l.rotateDue()
	}
	l.mu.RLock()
	out, name := l.out, l.name
	l.mu.RUnlock()
	if out == nil { // closed meanwhile
		return ErrClosedLog
	}
	if fi, err := os.Stat(name); err == nil {
		if ofi, err := out.Stat(); err == nil && os.SameFile(fi, ofi) {
			l.checkFail.Store(false)
			return nil
		}
	}
	if err := l.recreate(out, name); err != nil {
		l.checkErrors.Add(1)
		if l.checkFail.CompareAndSwap(false, true) {
			l.episodes.Add(1)
			l.report(fmt.Errorf("%w (writing goes on to the old file, nothing is lost; retrying at each check)", err))
		}
		return err
	}
	l.checkFail.Store(false)
	return nil
}

// recreate reopens the current file name after the file vanished (or was
// replaced). If the old file was deleted (no name left), its content is
// still readable through our descriptor: it is copied into the new file,
// the bulk without the lock, the tail under it, so nothing written before
// or since the deletion is lost. If the name cannot be re-created, writing
// goes on to the old descriptor and the next check tries again. Called
// under checkMu.
func (l *sharedLog) recreate(old *os.File, name string) error {
	fh, err := l.openFile(name)
	if err != nil {
		return fmt.Errorf("%w: re-create %s: %w", ErrOpen, name, err)
	}
	l.mu.Lock()
	if l.closed || l.out != old {
		// Rotated meanwhile: the rotation took care of old. Leave no
		// empty file behind under the old name (unless it is the
		// current one again).
		if fi, err := fh.Stat(); err == nil && fi.Size() == 0 && name != l.name {
			if cur, err := os.Stat(name); err == nil && os.SameFile(fi, cur) {
				_ = os.Remove(name)
			}
		}
		l.mu.Unlock()
		return fh.Close()
	}
	deleted := unlinked(old)
	if !deleted { // renamed away: its lines stay where it went
		l.installLocked(fh, name)
		l.recreated.Add(1)
		l.mu.Unlock()
		return nil
	}
	l.salvaging, l.salvageTo = old, name
	l.mu.Unlock()

	copied, _ := io.Copy(fh, io.NewSectionReader(old, 0, 1<<62))
	if l.afterBulkCopy != nil {
		l.afterBulkCopy() // tests: the world moves while the bulk is copied
	}

	l.mu.Lock()
	if l.out == old && !l.closed {
		n, _ := io.Copy(fh, io.NewSectionReader(old, copied, 1<<62))
		l.salvaged.Add(copied + n)
		l.installLocked(fh, name) // old is l.salvaging: not copied again
		l.salvaging, l.salvageTo = nil, ""
		l.recreated.Add(1)
		l.mu.Unlock()
		return old.Close()
	}
	// A rotation switched away from old meanwhile and left it to us (Close
	// waits for a running Check): the rest is copied, and fh stays a file
	// of this log holding the old lines.
	n, _ := io.Copy(fh, io.NewSectionReader(old, copied, 1<<62))
	l.salvaged.Add(copied + n)
	l.recreated.Add(1)
	l.salvaging, l.salvageTo = nil, ""
	if unlinked(fh) && l.out != nil && !l.closed {
		// fh was deleted from outside too while the bulk was copied into
		// it (it had the current name then), and it is no longer current:
		// nothing would read it back. Its lines go to the current file.
		m, _ := io.Copy(l.out, io.NewSectionReader(fh, 0, 1<<62))
		l.size.Add(m)
		l.salvaged.Add(m)
	}
	l.mu.Unlock()
	return errors.Join(old.Close(), fh.Close())
}
