// Package logging builds the one zap logger the daemon and gatectl use; it
// is passed down explicitly, never stored in a global.
package logging

import (
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a logger writing to w at level, as JSON lines or console text.
// Repeated identical messages are sampled so a flood of hostile packets
// cannot flood the log.
func New(level string, json bool, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("logging: %w", err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	if json {
		encoder = zapcore.NewJSONEncoder(enc)
	} else {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	core := zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), lvl)
	core = zapcore.NewSamplerWithOptions(core, 1e9, 20, 100)
	return zap.New(core), nil
}
