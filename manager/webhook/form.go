package webhook

import (
	"errors"
	"fmt"
	"mime"
	"net/url"
)

// payloadOf returns the JSON payload of a delivery. A webhook configured
// with GitHub's application/x-www-form-urlencoded content type sends
// payload=<url-encoded JSON>, signed over the raw form body: the signature
// is checked on the body as received, and the JSON is taken out of it
// only afterwards. Any other content type is the JSON itself.
func payloadOf(contentType string, body []byte) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("parsing the form body: %w", err)
	}
	p, ok := form["payload"]
	if !ok || len(p) != 1 {
		return nil, errors.New("the form body has no single payload field")
	}
	return []byte(p[0]), nil
}
