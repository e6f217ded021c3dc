// Package workflows holds the GitHub Actions workflows that the buildfleet
// manager dispatches (buildbots.yml, and quick-demo.yml for the demo and the
// end-to-end tests) and, in workflows/lint, the linter that checks them
// against a fleet. README.md describes the inputs contract. The Go package
// itself only carries the tests that run the workflows through ghsim.
package workflows
