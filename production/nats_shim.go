package production

// TEMPORARY until pubsub.NewNATS lands.

import (
	"context"
	"errors"

	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/pubsub"
)

func openNATS(ctx context.Context, cfg *Config, log *logrus.Entry) (pubsub.Broker, error) {
	return nil, errors.New("NATS not available yet")
}
