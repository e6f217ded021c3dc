package ghsim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// workflow is the part of a workflow file that ghsim acts on.
type workflow struct {
	File     string // file name, the workflow_id buildfleet dispatches by
	Path     string // ".github/workflows/<file>"
	Name     string
	RunName  string
	Dispatch bool
	Inputs   map[string]wfInput
	Env      map[string]any
	Jobs     []*wfJob // in file order
}

type wfInput struct {
	Type     string // string, boolean, number, choice, environment
	Required bool
	Default  any
	Options  []string
}

type wfJob struct {
	Key            string
	Name           string
	If             string
	RunsOn         any
	Needs          []string
	Matrix         any
	TimeoutMinutes any
	Env            map[string]any
	Steps          []wfStep
}

type wfStep struct {
	Name  string         `yaml:"name"`
	ID    string         `yaml:"id"`
	If    string         `yaml:"if"`
	Run   string         `yaml:"run"`
	Uses  string         `yaml:"uses"`
	Shell string         `yaml:"shell"`
	Env   map[string]any `yaml:"env"`
	With  map[string]any `yaml:"with"`
}

type rawJob struct {
	Name     string `yaml:"name"`
	If       string `yaml:"if"`
	RunsOn   any    `yaml:"runs-on"`
	Needs    any    `yaml:"needs"`
	Strategy struct {
		Matrix any `yaml:"matrix"`
	} `yaml:"strategy"`
	TimeoutMinutes any            `yaml:"timeout-minutes"`
	Env            map[string]any `yaml:"env"`
	Steps          []wfStep       `yaml:"steps"`
}

// loadWorkflow reads and parses dir/file.
func loadWorkflow(dir, file string) (*workflow, error) {
	if dir == "" || strings.ContainsAny(file, `/\`) || file == "" {
		return nil, os.ErrNotExist
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, fmt.Errorf("reading workflow %s: %w", file, err)
	}
	w, err := parseWorkflow(b)
	if err != nil {
		return nil, fmt.Errorf("parsing workflow %s: %w", file, err)
	}
	w.File, w.Path = file, ".github/workflows/"+file
	if w.Name == "" {
		w.Name = w.Path
	}
	return w, nil
}

// workflowExists reports whether dir holds the workflow file file.
func workflowExists(dir, file string) bool {
	if dir == "" || file == "" || strings.ContainsAny(file, `/\`) || file == "." || file == ".." {
		return false
	}
	fi, err := os.Stat(filepath.Join(dir, file))
	return err == nil && fi.Mode().IsRegular()
}

func parseWorkflow(b []byte) (*workflow, error) {
	var doc struct {
		Name    string         `yaml:"name"`
		RunName string         `yaml:"run-name"`
		On      any            `yaml:"on"`
		Env     map[string]any `yaml:"env"`
		Jobs    yaml.Node      `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decoding yaml: %w", err)
	}
	w := &workflow{Name: doc.Name, RunName: doc.RunName, Env: doc.Env, Inputs: map[string]wfInput{}}
	switch on := doc.On.(type) {
	case string:
		w.Dispatch = on == "workflow_dispatch"
	case []any:
		for _, e := range on {
			w.Dispatch = w.Dispatch || e == "workflow_dispatch"
		}
	case map[string]any:
		wd, ok := on["workflow_dispatch"]
		w.Dispatch = ok
		if m, ok := wd.(map[string]any); ok {
			ins, _ := m["inputs"].(map[string]any)
			for name, v := range ins {
				in := wfInput{Type: "string"}
				if d, ok := v.(map[string]any); ok {
					if t, ok := d["type"].(string); ok {
						in.Type = t
					}
					in.Required, _ = d["required"].(bool)
					in.Default = d["default"]
					for _, o := range asSlice(d["options"]) {
						in.Options = append(in.Options, toStr(o))
					}
				}
				w.Inputs[name] = in
			}
		}
	}
	if doc.Jobs.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("workflow has no jobs")
	}
	for i := 0; i+1 < len(doc.Jobs.Content); i += 2 {
		var rj rawJob
		if err := doc.Jobs.Content[i+1].Decode(&rj); err != nil {
			return nil, fmt.Errorf("job %s: %w", doc.Jobs.Content[i].Value, err)
		}
		j := &wfJob{
			Key: doc.Jobs.Content[i].Value, Name: rj.Name, If: rj.If, RunsOn: rj.RunsOn,
			Matrix: rj.Strategy.Matrix, TimeoutMinutes: rj.TimeoutMinutes, Env: rj.Env, Steps: rj.Steps,
		}
		switch n := rj.Needs.(type) {
		case string:
			j.Needs = []string{n}
		case []any:
			for _, e := range n {
				j.Needs = append(j.Needs, toStr(e))
			}
		}
		if j.RunsOn == nil {
			return nil, fmt.Errorf("job %s: runs-on is required", j.Key)
		}
		w.Jobs = append(w.Jobs, j)
	}
	return w, nil
}
