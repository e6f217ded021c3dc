package config

import (
	"fmt"
	"os"
	"strings"
)

// ResolveSecretFiles reads the *_file variants into their secrets. A file
// given together with a literal value is an error: two sources for one
// secret hide mistakes. Errors name the key and never the content.
func (c *Config) ResolveSecretFiles() error {
	for _, s := range []struct {
		key, fileKey string
		file         string
		dst          *Secret
	}{
		{"github.token", "github.token_file", c.GitHub.TokenFile, &c.GitHub.Token},
		{"github.webhook_secret", "github.webhook_secret_file", c.GitHub.WebhookSecretFile, &c.GitHub.WebhookSecret},
		{"nomad.token", "nomad.token_file", c.Nomad.TokenFile, &c.Nomad.Token},
	} {
		if s.file == "" {
			continue
		}
		if *s.dst != "" {
			return fmt.Errorf("%s: set both %s and %s; keep one", s.key, s.key, s.fileKey)
		}
		b, err := os.ReadFile(s.file)
		if err != nil {
			return fmt.Errorf("%s: %w", s.fileKey, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return fmt.Errorf("%s: %s is empty", s.fileKey, s.file)
		}
		*s.dst = Secret(v)
	}
	return nil
}
