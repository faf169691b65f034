//go:build !linux

package control

import "errors"

func procGroups(int) ([]int, error) {
	return nil, errors.New("supplementary groups are read from /proc on Linux only")
}
