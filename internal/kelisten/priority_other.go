//go:build !linux

package kelisten

// lowerPriority is a no-op where threads have no priority of their own.
func lowerPriority(int) bool { return false }
