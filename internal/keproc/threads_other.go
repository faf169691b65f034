//go:build !linux

package keproc

import "errors"

func niceProcess(int) error {
	return errors.New("per-process nice values are set on Linux only")
}

func nameProcess() error { return nil }

func idleProcess() error {
	return errors.New("SCHED_IDLE is set on Linux only")
}
