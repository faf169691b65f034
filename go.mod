module timegate

go 1.27

toolchain go1.27.3

require (
	github.com/c2sp/wycheproof v0.0.0-20260902155932-3fa63dd0344a
	github.com/cloudflare/circl v1.6.5
	go.uber.org/zap v1.28.0
	golang.org/x/crypto v0.59.0
	golang.org/x/time v0.16.0
)

require (
	go.uber.org/multierr v1.10.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
