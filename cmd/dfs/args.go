package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// withTrailingFlags lets a command take its flags after its arguments too
// (`dfs user token add alice --label laptop`, as people type it): urfave/cli
// v2 stops parsing flags at the first argument and would hand the rest to
// the action as arguments. action gets the positional arguments.
func withTrailingFlags(action func(c *cli.Context, args []string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		args, err := applyTrailingFlags(c)
		if errors.Is(err, errHelpShown) {
			return nil
		}
		if err != nil {
			return err
		}
		return action(c, args)
	}
}

var errHelpShown = errors.New("help shown")

// applyTrailingFlags sets the command's flags found among its arguments and
// returns the other arguments. "--" ends the flags; -h or --help shows the
// command's help (and nothing is done, errHelpShown).
func applyTrailingFlags(c *cli.Context) ([]string, error) {
	in := c.Args().Slice()
	var pos []string
	for i := 0; i < len(in); i++ {
		a := in[i]
		if a == "--" {
			pos = append(pos, in[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			if err := cli.ShowCommandHelp(c.Lineage()[1], c.Command.Name); err != nil {
				return nil, err
			}
			return nil, errHelpShown
		}
		f := commandFlag(c.Command, name)
		if f == nil {
			return nil, fmt.Errorf("flag provided but not defined: %s", a)
		}
		if _, isBool := f.(*cli.BoolFlag); isBool && !hasValue {
			value = "true"
		} else if !hasValue {
			if i+1 == len(in) {
				return nil, fmt.Errorf("flag needs a value: %s", a)
			}
			i++
			value = in[i]
		}
		// The first name: urfave/cli copies values between aliases only
		// while parsing, and reads a flag by the name it was set under.
		if err := c.Set(f.Names()[0], value); err != nil {
			return nil, fmt.Errorf("invalid value %q for flag %s: %w", value, a, err)
		}
	}
	return pos, nil
}

func commandFlag(cmd *cli.Command, name string) cli.Flag {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}
