package main

import (
	"fmt"
	"io"

	"timegate/internal/gateway"
)

func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprint(stderr, "usage: gatectl config check FILE\n")
		return exitUsage
	}
	if err := gateway.Check(args[1]); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: OK\n", args[1])
	return exitOK
}
