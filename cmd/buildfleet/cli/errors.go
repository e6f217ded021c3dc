package cli

import "errors"

// exitCoder is an error that chooses the process exit code.
type exitCoder interface {
	error
	ExitCode() int
}

// exitError ends a command with a given code; an empty message prints
// nothing more (the command already reported, e.g. lint findings).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) ExitCode() int { return e.code }

func asExit(err error, target *exitCoder) bool { return errors.As(err, target) }
