package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Call sends one command to the control socket at path and decodes the
// answer's data into out (nil: ignore it). A refused, unknown or failed
// command comes back as *Error.
func Call(ctx context.Context, path, cmd string, args, out any) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("cannot reach timegate's control socket %s: %w", path, err)
	}
	defer c.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultTimeout)
	}
	c.SetDeadline(deadline)
	req := Request{V: Version, Cmd: cmd}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return err
		}
	}
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	// A server over its connection cap answers "busy" and closes before
	// reading: the write may then fail while that answer waits to be read.
	_, werr := c.Write(append(line, '\n'))
	resp, err := readResponse(c)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, errors.Join(werr, err))
	}
	if !resp.OK {
		return &Error{Code: resp.Code, Msg: resp.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Data, out); err != nil {
		return fmt.Errorf("control socket %s: decoding %s: %w", path, cmd, err)
	}
	return nil
}

func readResponse(r io.Reader) (Response, error) {
	line, err := bufio.NewReader(io.LimitReader(r, MaxResponse)).ReadBytes('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return Response{}, fmt.Errorf("no answer: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("bad answer: %w", err)
	}
	if resp.V != Version {
		return Response{}, fmt.Errorf("the daemon speaks control protocol %d, this gatectl %d: use the gatectl of the same release", resp.V, Version)
	}
	return resp, nil
}
