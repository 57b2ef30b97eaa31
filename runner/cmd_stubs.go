package main

import (
	"context"
	"errors"
)

var errTODO = errors.New("not yet implemented")

func runStatus(ctx context.Context, e *env, args []string) error { return errTODO }
