package ghsim

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// GitHub's encoded_jit_config is base64 of a JSON object that maps a file
// name of the runner's root folder to that file's content, base64 again:
// .runner (settings), .credentials (OAuth client) and
// .credentials_rsaparams (the RSA key the runner signs its token requests
// with). actions/runner src/Runner.Listener/Runner.cs writes each entry to
// a file; github-act-runner runnerconfiguration/compat reads the same map.
// Values in .runner are strings ("AgentId": "12"): github-act-runner
// requires it and actions/runner's JSON reader accepts it. ghsim makes the
// key pair, keeps the public half, and hands the private half out once.

// serviceRoot is where ghsim serves the Actions service (GitHub:
// pipelines.actions.githubusercontent.com/<tenant>/); tokenRoot is its
// OAuth token service (GitHub: vstoken.actions.githubusercontent.com).
const (
	serviceRoot = "/_services/pipelines/"
	tokenRoot   = "/_services/vstoken/_apis/oauth2/token/"
	svcPoolID   = 1
)

// runnerKeyBits is the size of the runners' RSA keys, as actions/runner's
// own configuration makes them.
const runnerKeyBits = 2048

// runnerCreds is what ghsim keeps of a JIT runner's credentials.
type runnerCreds struct {
	clientID string // OAuth client id, a GUID
	pub      *rsa.PublicKey
}

// JITConfig is a decoded encoded_jit_config: what the runner needs to
// reach the Actions service and prove who it is.
type JITConfig struct {
	AgentID          int64
	AgentName        string
	PoolID           int64
	ServerURL        string // the Actions service
	GitHubURL        string // the repository the runner is registered to
	WorkFolder       string
	Ephemeral        bool
	ClientID         string
	AuthorizationURL string
	Key              *rsa.PrivateKey
}

// dotnetRunner is the .runner file.
type dotnetRunner struct {
	AgentID       string `json:"AgentId"`
	AgentName     string `json:"AgentName"`
	PoolID        string `json:"PoolId"`
	PoolName      string `json:"PoolName"`
	ServerURL     string `json:"ServerUrl"`
	GitHubURL     string `json:"GitHubUrl"`
	WorkFolder    string `json:"WorkFolder"`
	Ephemeral     string `json:"Ephemeral"`
	DisableUpdate string `json:"DisableUpdate"`
}

// dotnetCredentials is the .credentials file.
type dotnetCredentials struct {
	Scheme string `json:"Scheme"`
	Data   struct {
		ClientID         string `json:"ClientId"`
		AuthorizationURL string `json:"AuthorizationUrl"`
	} `json:"Data"`
}

// rsaParams is the .credentials_rsaparams file: .NET's RSAParameters,
// each big-endian integer base64-encoded.
type rsaParams struct {
	D        []byte `json:"d"`
	DP       []byte `json:"dp"`
	DQ       []byte `json:"dq"`
	Exponent []byte `json:"exponent"`
	InverseQ []byte `json:"inverseQ"`
	Modulus  []byte `json:"modulus"`
	P        []byte `json:"p"`
	Q        []byte `json:"q"`
}

// newRunnerKey makes a runner's key pair.
func newRunnerKey() (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, runnerKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generating runner key: %w", err)
	}
	return k, nil
}

// encodeJIT builds the encoded_jit_config of rn. Callers hold s.mu.
func (s *Server) encodeJIT(rn *runner, key *rsa.PrivateKey) (string, error) {
	cr := &runnerCreds{clientID: guid(), pub: &key.PublicKey}
	s.svc().creds[rn.ID] = cr
	files := map[string]any{
		".runner": dotnetRunner{
			AgentID: strconv.FormatInt(rn.ID, 10), AgentName: rn.Name,
			PoolID: strconv.Itoa(svcPoolID), PoolName: "Default",
			ServerURL: s.base + serviceRoot, GitHubURL: s.base + "/" + rn.Repo.FullName(),
			WorkFolder: rn.WorkFolder, Ephemeral: "true", DisableUpdate: "false",
		},
		".credentials_rsaparams": rsaParams{
			D: key.D.Bytes(), P: key.Primes[0].Bytes(), Q: key.Primes[1].Bytes(),
			DP: key.Precomputed.Dp.Bytes(), DQ: key.Precomputed.Dq.Bytes(), InverseQ: key.Precomputed.Qinv.Bytes(),
			Modulus: key.N.Bytes(), Exponent: big.NewInt(int64(key.E)).Bytes(),
		},
	}
	var cred dotnetCredentials
	cred.Scheme = "OAuth"
	cred.Data.ClientID = cr.clientID
	cred.Data.AuthorizationURL = s.base + tokenRoot + cr.clientID
	files[".credentials"] = cred
	out := map[string]string{}
	for name, v := range files {
		b, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("encoding %s: %w", name, err)
		}
		out[name] = base64.StdEncoding.EncodeToString(b)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encoding jit config: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeJITConfig parses an encoded_jit_config in GitHub's format.
func DecodeJITConfig(enc string) (JITConfig, error) {
	var c JITConfig
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return c, errf("decoding jit config: %w", err)
	}
	var files map[string]string
	if err := json.Unmarshal(raw, &files); err != nil {
		return c, errf("parsing jit config: %w", err)
	}
	file := func(name string, v any) error {
		b, err := base64.StdEncoding.DecodeString(files[name])
		if err != nil {
			return errf("jit config file %s: %w", name, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return errf("jit config file %s: %w", name, err)
		}
		return nil
	}
	var rs dotnetRunner
	var cred dotnetCredentials
	var kp rsaParams
	for name, v := range map[string]any{".runner": &rs, ".credentials": &cred, ".credentials_rsaparams": &kp} {
		if err := file(name, v); err != nil {
			return c, err
		}
	}
	if c.AgentID, err = strconv.ParseInt(rs.AgentID, 10, 64); err != nil {
		return c, errf("jit config AgentId %q: %w", rs.AgentID, err)
	}
	if c.PoolID, err = strconv.ParseInt(rs.PoolID, 10, 64); err != nil {
		return c, errf("jit config PoolId %q: %w", rs.PoolID, err)
	}
	c.AgentName, c.ServerURL, c.GitHubURL, c.WorkFolder = rs.AgentName, rs.ServerURL, rs.GitHubURL, rs.WorkFolder
	c.Ephemeral, _ = strconv.ParseBool(rs.Ephemeral)
	c.ClientID, c.AuthorizationURL = cred.Data.ClientID, cred.Data.AuthorizationURL
	n := func(b []byte) *big.Int { return new(big.Int).SetBytes(b) }
	c.Key = &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: n(kp.Modulus), E: int(n(kp.Exponent).Int64())},
		D:         n(kp.D), Primes: []*big.Int{n(kp.P), n(kp.Q)},
	}
	c.Key.Precompute()
	if err := c.Key.Validate(); err != nil {
		return c, errf("jit config key: %w", err)
	}
	return c, nil
}
