package main

import "errors"

// runEIO is a placeholder until the engine/eio engineer replaces this file.
func runEIO(addr string) error { return errors.New("-mode eio: not built yet") }
