package main

import (
	"context"
	"errors"
)

var errTODO = errors.New("not yet implemented")

func runRerun(ctx context.Context, e *env, args []string) error     { return errTODO }
func runSample(ctx context.Context, e *env, args []string) error    { return errTODO }
func runVisualize(ctx context.Context, e *env, args []string) error { return errTODO }
func runStatus(ctx context.Context, e *env, args []string) error    { return errTODO }
func runData(ctx context.Context, e *env, args []string) error      { return errTODO }
