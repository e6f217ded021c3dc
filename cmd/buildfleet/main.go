// Command buildfleet is the manager and its tools: serve, trigger, status,
// lint, donor, config, version. The daemon itself is the manager package.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/buildfleet/buildfleet/cmd/buildfleet/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
