package nomad

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// Prerequisite is something a pool job needs to exist in Nomad before it
// can be registered: its namespace and its node pool.
type Prerequisite struct {
	Kind string // "namespace" or "node pool"
	Name string
	// Created is true when EnsurePrerequisites created it now.
	Created bool
}

// ErrMissing lists what an operator must create by hand because the token
// may not: it names each item and the command that creates it.
type ErrMissing struct{ Items []string }

func (e *ErrMissing) Error() string {
	return "nomad lacks what the pool jobs need, and this token may not create it; an operator with a management token must run:\n  " +
		strings.Join(e.Items, "\n  ")
}

// EnsurePrerequisites creates the namespace and node pools the pool jobs
// need, when missing and the token may; it is idempotent. Whatever is
// missing and may not be created is returned in one *ErrMissing, so an
// operator sees the whole list at once.
func (c *Client) EnsurePrerequisites(ctx context.Context, namespace string, nodePools []string) ([]Prerequisite, error) {
	var out []Prerequisite
	var missing []string
	q := (&api.QueryOptions{}).WithContext(ctx)
	w := (&api.WriteOptions{}).WithContext(ctx)

	if namespace != "" && namespace != "default" {
		_, _, err := c.api.Namespaces().Info(namespace, q)
		switch code := statusCode(err); {
		case err == nil:
			out = append(out, Prerequisite{Kind: "namespace", Name: namespace})
		case code == 404:
			_, err := c.api.Namespaces().Register(&api.Namespace{
				Name: namespace, Description: "buildfleet runner jobs",
			}, w)
			switch {
			case err == nil:
				out = append(out, Prerequisite{Kind: "namespace", Name: namespace, Created: true})
			case statusCode(err) == 403:
				missing = append(missing, fmt.Sprintf("nomad namespace apply -description 'buildfleet runner jobs' %s", namespace))
			default:
				return out, wrap("creating namespace "+namespace, err)
			}
		case code == 403:
			missing = append(missing, fmt.Sprintf("nomad namespace apply -description 'buildfleet runner jobs' %s   # (this token may not even read it)", namespace))
		default:
			return out, wrap("reading namespace "+namespace, err)
		}
	}

	pools := append([]string(nil), nodePools...)
	sort.Strings(pools)
	for i, name := range pools {
		if (i > 0 && pools[i-1] == name) || name == "default" || name == "all" {
			continue
		}
		_, _, err := c.api.NodePools().Info(name, q)
		switch code := statusCode(err); {
		case err == nil:
			out = append(out, Prerequisite{Kind: "node pool", Name: name})
		case code == 404:
			_, err := c.api.NodePools().Register(&api.NodePool{
				Name: name, Description: "buildfleet donor hosts",
			}, w)
			switch {
			case err == nil:
				out = append(out, Prerequisite{Kind: "node pool", Name: name, Created: true})
			case statusCode(err) == 403:
				missing = append(missing, nodePoolCmd(name))
			default:
				return out, wrap("creating node pool "+name, err)
			}
		case code == 403:
			missing = append(missing, nodePoolCmd(name)+"   # (this token may not even read it)")
		default:
			return out, wrap("reading node pool "+name, err)
		}
	}
	if len(missing) > 0 {
		return out, &ErrMissing{Items: missing}
	}
	return out, nil
}

// IsMissing reports whether err is an *ErrMissing.
func IsMissing(err error) bool {
	var m *ErrMissing
	return errors.As(err, &m)
}

// nodePoolCmd is the shell command that creates a node pool.
func nodePoolCmd(name string) string {
	return fmt.Sprintf(`echo 'node_pool %q { description = "buildfleet donor hosts" }' | nomad node pool apply -`, name)
}
