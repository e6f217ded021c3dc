package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/buildfleet/buildfleet/config"
)

// EnvPrefix prefixes every environment variable that sets a config key:
// BUILDFLEET_GITHUB_TOKEN sets github.token.
const EnvPrefix = "BUILDFLEET"

// LoadOptions says where a configuration comes from.
type LoadOptions struct {
	// File is the YAML config file; empty means defaults and environment only.
	File string
	// Env is the environment, as os.Environ() gives it; nil means none.
	Env []string
	// Flags maps config keys to flags whose value wins when set.
	Flags map[string]*pflag.Flag
	// SkipSecretFiles leaves *_file secrets unread (config validate of a file
	// meant for another machine).
	SkipSecretFiles bool
	// FleetOnly validates without the manager's GitHub credentials
	// (config.ValidateFleet), for the commands that do not use them; it
	// implies SkipSecretFiles.
	FleetOnly bool
}

// LoadConfig resolves a configuration: defaults < file < environment < flags,
// then reads secret files, applies per-entry defaults and validates. Every
// error names the key it concerns.
func LoadConfig(o LoadOptions) (config.Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	def := config.Default()
	leaves := leafKeys(reflect.TypeOf(def), "")
	var defMap map[string]any
	if err := mapstructure.Decode(def, &defMap); err != nil {
		return config.Config{}, fmt.Errorf("encoding defaults: %w", err)
	}
	for _, k := range leaves {
		if val, ok := lookup(defMap, k); ok {
			v.SetDefault(k, val)
		}
	}

	if o.File != "" {
		b, err := os.ReadFile(o.File)
		if err != nil {
			return config.Config{}, fmt.Errorf("reading config: %w", err)
		}
		if err := v.MergeConfig(bytes.NewReader(b)); err != nil {
			return config.Config{}, fmt.Errorf("%s: not valid YAML: %w", o.File, err)
		}
		var raw map[string]any
		if err := v.Unmarshal(&raw); err == nil {
			if err := unknownKeys(raw, reflect.TypeOf(def), ""); err != nil {
				return config.Config{}, fmt.Errorf("%s: %w", o.File, err)
			}
		}
	}

	env := map[string]string{}
	for _, kv := range o.Env {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix+"_") {
			env[k] = val
		}
	}
	// Nomad's own variables sit between the file and BUILDFLEET_*: the
	// same environment an operator's nomad CLI uses reaches the manager,
	// and a BUILDFLEET_NOMAD_* variable still wins.
	for _, kv := range o.Env {
		name, val, ok := strings.Cut(kv, "=")
		if key := NomadEnv[name]; ok && key != "" && val != "" {
			v.Set(key, val)
			if key == "nomad.token" {
				v.Set("nomad.token_file", "") // the variable replaces the file's token
			}
		}
	}
	known := map[string]bool{}
	for _, k := range leaves {
		name := EnvName(k)
		known[name] = true
		if val, ok := env[name]; ok {
			v.Set(k, val)
		}
	}
	for name := range env {
		if !known[name] && !toolingEnv[name] && !strings.HasPrefix(name, EnvPrefix+"_TEST_") && !strings.HasPrefix(name, EnvPrefix+"_PROOF_") {
			return config.Config{}, fmt.Errorf("%s: unknown environment variable (no such config key)", name)
		}
	}
	for k, f := range o.Flags {
		if f != nil && f.Changed {
			v.Set(k, f.Value.String())
		}
	}

	var c config.Config
	err := v.Unmarshal(&c, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.TextUnmarshallerHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err != nil {
		return config.Config{}, fmt.Errorf("decoding config: %w", err)
	}
	c.ApplyDefaults()
	if !o.SkipSecretFiles && !o.FleetOnly {
		if err := c.ResolveSecretFiles(); err != nil {
			return config.Config{}, err
		}
	}
	validate := c.Validate
	if o.FleetOnly {
		validate = c.ValidateFleet
	}
	if err := validate(); err != nil {
		return config.Config{}, err
	}
	return c, nil
}

// NomadEnv maps Nomad's standard variables to the config keys they set,
// below BUILDFLEET_* and above the file.
var NomadEnv = map[string]string{
	"NOMAD_ADDR":            "nomad.address",
	"NOMAD_TOKEN":           "nomad.token",
	"NOMAD_NAMESPACE":       "nomad.namespace",
	"NOMAD_REGION":          "nomad.region",
	"NOMAD_CACERT":          "nomad.ca_file",
	"NOMAD_CLIENT_CERT":     "nomad.client_cert_file",
	"NOMAD_CLIENT_KEY":      "nomad.client_key_file",
	"NOMAD_TLS_SERVER_NAME": "nomad.tls_server_name",
}

// toolingEnv are BUILDFLEET_ variables of the Makefile and the tests, not
// config keys; every other unknown BUILDFLEET_ variable is an error, so that
// a typo does not silently leave a default in place.
var toolingEnv = map[string]bool{
	EnvPrefix + "_CACHE":    true,
	EnvPrefix + "_NOMAD":    true,
	EnvPrefix + "_NPM_DIR":  true,
	EnvPrefix + "_CHROMIUM": true,
	EnvPrefix + "_CONFIG":   true,
	// The github-act-runner binary `make runners` built (tests).
	EnvPrefix + "_ACT_RUNNER": true,
	// Where browser tests keep their screenshots.
	EnvPrefix + "_SCREENSHOTS": true,
}

// EnvName is the environment variable of a config key.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// leafKeys lists the dotted keys of scalar fields, the ones the environment
// and flags can set. Lists of structures are left to the file.
func leafKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		switch {
		case f.Type.Kind() == reflect.Struct:
			out = append(out, leafKeys(f.Type, key+".")...)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
		default:
			out = append(out, key)
		}
	}
	return out
}

func lookup(m map[string]any, key string) (any, bool) {
	head, rest, nested := strings.Cut(key, ".")
	val, ok := m[head]
	if !ok || !nested {
		return val, ok
	}
	sub, ok := val.(map[string]any)
	if !ok {
		return nil, false
	}
	return lookup(sub, rest)
}

// unknownKeys reports every key of raw that t does not declare, with its
// full path (pools[2].lables), all at once.
func unknownKeys(raw map[string]any, t reflect.Type, prefix string) error {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("mapstructure"); tag != "" && tag != "-" {
			fields[tag] = t.Field(i).Type
		}
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		ft, ok := fields[k]
		if !ok {
			errs = append(errs, &config.FieldError{Key: prefix + k, Msg: "unknown key"})
			continue
		}
		switch {
		case ft.Kind() == reflect.Struct:
			if sub, ok := raw[k].(map[string]any); ok {
				errs = append(errs, unknownKeys(sub, ft, prefix+k+"."))
			}
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			if list, ok := raw[k].([]any); ok {
				for i, item := range list {
					if sub, ok := item.(map[string]any); ok {
						errs = append(errs, unknownKeys(sub, ft.Elem(), fmt.Sprintf("%s%s[%d].", prefix, k, i)))
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}
