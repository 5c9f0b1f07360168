package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestTrailingFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    string // "label|ro|positional args"
		wantErr string
	}{
		{args: []string{"a", "b"}, want: "|false|a,b"},
		{args: []string{"a", "--label", "x", "b"}, want: "x|false|a,b"},
		{args: []string{"--label", "x", "a"}, want: "x|false|a"},
		{args: []string{"a", "-l", "x", "--ro"}, want: "x|true|a"},
		{args: []string{"a", "--label=x=y", "--ro=false"}, want: "x=y|false|a"},
		{args: []string{"a", "--", "--label", "-"}, want: "|false|a,--label,-"},
		{args: []string{"a", "-"}, want: "|false|a,-"},
		{args: []string{"a", "--label"}, wantErr: "needs a value"},
		{args: []string{"a", "--nope"}, wantErr: "not defined"},
		{args: []string{"a", "--ro=maybe"}, wantErr: "invalid value"},
	}
	for _, tt := range tests {
		var got string
		app := &cli.App{Name: "t", Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{}, Commands: []*cli.Command{{
			Name: "cmd",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "label", Aliases: []string{"l"}},
				&cli.BoolFlag{Name: "ro"},
			},
			Action: withTrailingFlags(func(c *cli.Context, args []string) error {
				got = c.String("label") + "|" + strconv.FormatBool(c.Bool("ro")) + "|" + strings.Join(args, ",")
				return nil
			}),
		}}}
		err := app.Run(append([]string{"t", "cmd"}, tt.args...))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: %v, want an error saying %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %q (%v), want %q", tt.args, got, err, tt.want)
		}
	}
}
