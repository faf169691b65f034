package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// maxIncludeDepth bounds nesting: a file that includes itself must end in
// an error, not a stack overflow.
const maxIncludeDepth = 10

// include PATTERN (chrony: every file matching the glob, in sorted order),
// includefile FILE (ntpd), confdir DIR... (chrony: the *.conf files of the
// directories, sorted by name, a name in an earlier directory hiding the
// same name in a later one), sourcedir DIR... (the same with *.sources
// files, which may hold only source lines).
func includeDirective(p *parser, name string, args []string) {
	if len(args) == 0 || (name != "confdir" && name != "sourcedir" && len(args) != 1) {
		p.fail(name, "takes one file or pattern (confdir and sourcedir: directories)")
		return
	}
	if p.depth >= maxIncludeDepth {
		p.fail(name, "includes nested more than %d deep", maxIncludeDepth)
		return
	}
	var files []string
	switch name {
	case "include":
		m, err := filepath.Glob(args[0])
		if err != nil {
			p.fail(name, "bad pattern %q: %v", args[0], err)
			return
		}
		if len(m) == 0 {
			p.warn(name, "%s matches no file", args[0])
		}
		files = m
	case "includefile":
		// ntpd: a file that cannot be opened is reported and skipped;
		// NTPsec's example configurations name their snippets relative to
		// the including file, which is where a relative name is looked up.
		f := args[0]
		if !filepath.IsAbs(f) {
			f = filepath.Join(filepath.Dir(p.pos.File), f)
		}
		if _, err := os.Stat(f); err != nil {
			p.warn(name, "%v: nothing included", err)
			return
		}
		files = []string{f}
	case "confdir":
		files = p.dirFiles(name, args, ".conf")
	case "sourcedir":
		files = p.dirFiles(name, args, ".sources")
	}
	for _, f := range files {
		p.includeFile(name, f, name == "sourcedir")
	}
}

// dirFiles lists the files with the extension in dirs, as chrony does. A
// missing directory holds no files (chrony: /run/chrony-dhcp exists only
// while a DHCP client has written servers).
func (p *parser) dirFiles(name string, dirs []string, ext string) []string {
	byName := map[string]string{}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			p.fail(name, "%v", err)
			continue
		}
		for _, e := range entries {
			n := e.Name()
			if !strings.HasSuffix(n, ext) || e.IsDir() {
				continue
			}
			if _, dup := byName[n]; !dup {
				byName[n] = filepath.Join(dir, n)
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	files := make([]string, len(names))
	for i, n := range names {
		files[i] = byName[n]
	}
	return files
}

// includeFile parses one included file in place, then restores the
// position of the including line.
func (p *parser) includeFile(name, path string, sources bool) {
	data, err := readConfigFile(path)
	if err != nil {
		p.fail(name, "%v", err)
		return
	}
	saved, savedSources := p.pos, p.sources
	p.depth++
	p.sources = sources
	p.parseText(path, data)
	p.depth--
	p.pos, p.sources = saved, savedSources
}

// readConfigFile reads a regular file of at most maxFileSize bytes: a huge
// file named by mistake is refused without being read whole, and a FIFO or
// device (include /dev/stdin) is refused instead of blocking start-up.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}
