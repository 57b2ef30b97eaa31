package main

import (
	"context"
	"errors"
)

var errTODO = errors.New("not yet implemented")

func runSweep(ctx context.Context, e *env, args []string) error     { return errTODO }
func runReport(ctx context.Context, e *env, args []string) error    { return errTODO }
func runRerun(ctx context.Context, e *env, args []string) error     { return errTODO }
func runList(ctx context.Context, e *env, args []string) error      { return errTODO }
func runShow(ctx context.Context, e *env, args []string) error      { return errTODO }
func runExplain(ctx context.Context, e *env, args []string) error   { return errTODO }
func runSample(ctx context.Context, e *env, args []string) error    { return errTODO }
func runVisualize(ctx context.Context, e *env, args []string) error { return errTODO }
func runStatus(ctx context.Context, e *env, args []string) error    { return errTODO }
func runData(ctx context.Context, e *env, args []string) error      { return errTODO }
