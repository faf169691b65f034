// Command privprobe drops privileges the way timegate does (internal/privdrop)
// and prints what the kernel then says about the process, so that a test can
// check the capability sets with CAP_SYS_TIME kept — which timegate itself
// keeps only with `clockcontrol on`, a mode tests never run because it steers
// the system clock. It touches no clock.
//
// Usage: privprobe USER keep|drop
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"timegate/internal/privdrop"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: privprobe USER keep|drop")
		os.Exit(2)
	}
	t, err := privdrop.Lookup(os.Args[1])
	if err == nil {
		err = privdrop.Drop(t, os.Args[2] == "keep")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Every thread, not only this one: capabilities are per thread.
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		f, err := os.Open("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			for _, k := range []string{"Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapAmb:", "NoNewPrivs:"} {
				if strings.HasPrefix(line, k) {
					fmt.Printf("%s %s\n", task.Name(), strings.Join(strings.Fields(line), " "))
				}
			}
		}
		f.Close()
	}
}
