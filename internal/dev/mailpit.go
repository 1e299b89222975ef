package dev

import (
	"context"
	"time"

	"github.com/herald-dev/herald/internal/dev/mailpit"
)

// startMailpit runs Mailpit as the email sink, with the starter the tests
// use: SMTP without TLS that accepts any or no authentication on the fixed
// SMTP port, the web UI and API on the fixed HTTP port, messages kept in
// the state directory across restarts. Its own process group keeps a
// terminal's Ctrl-C away from it until herald dev stops it (SIGTERM, then
// SIGKILL after 10s); its pid is recorded for reapOrphans.
func (e *Env) startMailpit(ctx context.Context) error {
	mp, err := mailpit.StartContext(ctx, mailpit.Options{
		Binary:            e.opts.Mailpit,
		Dir:               e.state.path("mailpit"),
		LogFile:           e.state.path("logs", "mailpit.log"),
		PIDFile:           e.state.path("run", "mailpit.pid"),
		SMTPPort:          e.Ports.MailpitSMTP,
		HTTPPort:          e.Ports.MailpitHTTP,
		AcceptAnyAuth:     true,
		AllowInsecureAuth: true,
		OwnProcessGroup:   true,
		StopGrace:         10 * time.Second,
		DropEnv:           []string{shimEnvPrefix},
	})
	if err != nil {
		return err
	}
	e.onStop(mp.Close)
	return nil
}
