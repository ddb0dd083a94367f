package production

import (
	"context"
	"errors"
)

// ErrUpgradeUnavailable: Upgrade is not available in this build.
var ErrUpgradeUnavailable = errors.New("production: binary upgrade not available")

// Upgrade replaces the running binary (SIGUSR2). Placeholder: the systemd
// branch replaces this file with the real binary upgrade.
func (r *Runner) Upgrade(ctx context.Context) error {
	return ErrUpgradeUnavailable
}
