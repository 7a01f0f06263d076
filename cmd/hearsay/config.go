package main

// hearsay agent --config FILE: a YAML, TOML or JSON file whose keys are the
// agent's long flag names. The file is read with koanf (its parsers for the
// three formats, and its flattening of nested keys, so that a nested table
// is reported as the unknown key it is), and each key's value is set on
// its flag unless the command line or a HEARSAY_ variable set it: the
// flags' own checks then apply to the file's values too, and a flag added
// to the agent is a key of the file with no code here.

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/knadh/koanf/parsers/json"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"github.com/urfave/cli/v2"
)

// configOnlyFlags are the agent's flags that are not keys of the file.
var configOnlyFlags = []string{"config", "print-config", "help"}

// configFormat is a config file format, chosen by the file's extension.
type configFormat struct {
	name   string // "yaml", "toml" or "json"
	parser koanf.Parser
}

var (
	formatYAML = configFormat{"yaml", yaml.Parser()}
	formatTOML = configFormat{"toml", toml.Parser()}
	formatJSON = configFormat{"json", json.Parser()}
)

func formatOf(path string) (configFormat, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return formatYAML, nil
	case ".toml":
		return formatTOML, nil
	case ".json":
		return formatJSON, nil
	}
	return configFormat{}, flagErrorf("config", "%s: the name must end in .yaml, .yml, .toml or .json (it tells the format)", path)
}

// configFile is the config file an agent was started with, and the keys
// whose values came from it.
type configFile struct {
	path    string
	format  configFormat
	fromKey map[string]bool // flags set from the file
}

// applyConfigFile reads the --config file, if any, and sets its values on
// the command's flags that the command line and the environment left
// unset. It returns nil without --config.
func applyConfigFile(c *cli.Context) (*configFile, error) {
	path := flagValue(c, "config")
	if path == "" {
		return nil, nil
	}
	format, err := formatOf(path)
	if err != nil {
		return nil, err
	}
	f := &configFile{path: path, format: format, fromKey: map[string]bool{}}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, flagErrorf("config", "%v", err)
	}
	k := koanf.NewWithConf(koanf.Conf{Delim: "."})
	if err := k.Load(rawbytes.Provider(data), format.parser); err != nil {
		return nil, f.errorf("not valid %s: %v", strings.ToUpper(format.name), err)
	}
	values := k.All() // flattened: a nested key is "outer.inner"
	keys := make([]string, 0, len(values))
	for key := range values {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		fl := agentFlag(c, key)
		if fl == nil {
			return nil, f.errorf("unknown key %q (the keys are the agent's long flag names, as in hearsay agent --help)", key)
		}
		if c.IsSet(key) {
			continue // the command line or the environment wins
		}
		args, err := flagArgs(fl, key, values[key])
		if err != nil {
			return nil, f.errorf("key %q: %v", key, err)
		}
		for _, arg := range args {
			if err := c.Set(key, arg); err != nil {
				return nil, f.errorf("key %q: invalid value %q: %v", key, arg, err)
			}
		}
		f.fromKey[key] = true
	}
	return f, nil
}

// errorf is a usage error in the file.
func (f *configFile) errorf(format string, args ...any) error {
	return usageError{err: fmt.Errorf("--config %s: "+format, append([]any{f.path}, args...)...)}
}

// attribute rewords a flag's bad value as the file's when the value came
// from the file, so that the message names the file and the key.
func (f *configFile) attribute(err error) error {
	var ue usageError
	if f == nil || !errors.As(err, &ue) || !f.fromKey[ue.flag] {
		return err
	}
	msg := strings.TrimPrefix(ue.err.Error(), "--"+ue.flag+": ")
	return f.errorf("key %q: %s", ue.flag, msg)
}

// agentFlag returns the command's flag whose long name is key, if the file
// may set it.
func agentFlag(c *cli.Context, key string) cli.Flag {
	if slices.Contains(configOnlyFlags, key) {
		return nil
	}
	for _, fl := range c.Command.Flags {
		if fl.Names()[0] == key {
			return fl
		}
	}
	return nil
}

// flagArgs turns a file's value into the command-line values of fl: one for
// a scalar, one per element for a repeatable flag, and the elements joined
// with commas for a comma-separated list flag.
func flagArgs(fl cli.Flag, key string, v any) ([]string, error) {
	switch fl.(type) {
	case *cli.BoolFlag:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want true or false, got %s", describe(v))
		}
		return []string{strconv.FormatBool(b)}, nil
	case *cli.StringSliceFlag, *cli.IntSliceFlag, *cli.Int64SliceFlag, *cli.Float64SliceFlag, *cli.UintSliceFlag, *cli.Uint64SliceFlag:
		return scalarList(v)
	}
	if list, ok := v.([]any); ok {
		if !isListFlag(key) {
			return nil, fmt.Errorf("want a single value, got a list")
		}
		args, err := scalarList(list)
		return []string{strings.Join(args, ",")}, err
	}
	s, err := scalar(v)
	return []string{s}, err
}

// scalarList is a list's (or a lone scalar's) elements as text.
func scalarList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	var out []string
	for _, e := range list {
		s, err := scalar(e)
		if err != nil {
			return nil, fmt.Errorf("in the list: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// scalar is a string or a number as the command line writes it.
func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("want a string or a number, got %s", describe(v))
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "nothing (null)"
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	case string:
		return fmt.Sprintf("the string %q", v)
	}
	return fmt.Sprintf("%v (%T)", v, v)
}

// effectiveSettings are the values the agent runs with, by flag name, from
// whichever source gave them: lists as lists, whole numbers as numbers.
func effectiveSettings(c *cli.Context) map[string]any {
	out := map[string]any{}
	for _, fl := range c.Command.Flags {
		name := fl.Names()[0]
		if slices.Contains(configOnlyFlags, name) {
			continue
		}
		switch fl.(type) {
		case *cli.BoolFlag:
			out[name] = c.Bool(name)
		case *cli.StringSliceFlag:
			out[name] = append([]string{}, c.StringSlice(name)...)
		case *cli.StringFlag:
			s := flagValue(c, name)
			if isListFlag(name) {
				list := []string{}
				for _, e := range strings.Split(s, ",") {
					if e = strings.TrimSpace(e); e != "" {
						list = append(list, e)
					}
				}
				out[name] = list
			} else if n, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(n, 10) == s {
				out[name] = n
			} else {
				out[name] = s
			}
		default:
			out[name] = fmt.Sprint(c.Value(name))
		}
	}
	return out
}

// printConfig writes settings in format.
func printConfig(w io.Writer, format configFormat, settings map[string]any) error {
	b, err := format.parser.Marshal(settings)
	if err != nil {
		return fmt.Errorf("--print-config: %w", err)
	}
	if format.name == formatJSON.name {
		var indented bytes.Buffer
		if err := stdjson.Indent(&indented, b, "", "  "); err != nil {
			return fmt.Errorf("--print-config: %w", err)
		}
		b = indented.Bytes()
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	_, err = w.Write(b)
	return err
}
