// Package nomadspec embeds the Nomad specifications that buildfleet ships in
// this folder, so the binary renders and applies them without the source
// tree: the runner pool job template and the ACL policies.
package nomadspec

import _ "embed"

// RunnerPoolTemplate is runner-pool.nomad.hcl.tmpl: a Go text/template with
// [[ ]] delimiters (Nomad's own template blocks use {{ }}), rendered once
// per pool by manager/nomad.RenderPoolHCL.
//
//go:embed runner-pool.nomad.hcl.tmpl
var RunnerPoolTemplate string

// ManagerPolicy is acl/manager.policy.hcl: what the manager's token needs.
//
//go:embed acl/manager.policy.hcl
var ManagerPolicy string
