package ghsim

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// RunnerToken does what a runner does first with its JIT config: it signs
// a client assertion with the config's key and exchanges it for an Actions
// service token. The stand-in runner uses it, and so can tests.
func RunnerToken(ctx context.Context, hc *http.Client, c JITConfig) (string, error) {
	now := time.Now().Add(-30 * time.Second)
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := seg(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + seg(map[string]any{
		"sub": c.ClientID, "iss": c.ClientID, "aud": c.AuthorizationURL, "jti": guid(),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, c.Key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("signing client assertion: %w", err)
	}
	form := url.Values{
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {signing + "." + base64.RawURLEncoding.EncodeToString(sig)},
		"grant_type":            {"client_credentials"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.AuthorizationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("token request %s: %w", c.AuthorizationURL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	_ = json.Unmarshal(body, &out)
	if resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		return "", fmt.Errorf("token request: %d %s", resp.StatusCode, out.Error)
	}
	return out.AccessToken, nil
}

// serverOf is the ghsim base URL of a JIT config's service URL.
func serverOf(c JITConfig) string {
	return strings.TrimSuffix(strings.TrimRight(c.ServerURL, "/")+"/", serviceRoot)
}
