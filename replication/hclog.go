package replication

import (
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
)

// newHCLogger returns an hclog.Logger (what hashicorp/raft, its transport,
// snapshot store and raft-wal log through) whose messages end up in zl.
// hclog's intercept logger hands every message, with its structured
// arguments, to a sink; the sink re-emits it as a zerolog event, so level
// filtering and output format are zerolog's alone. The base logger is off:
// it would only format text nobody reads.
func newHCLogger(zl zerolog.Logger) hclog.Logger {
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.Off,
		Output: io.Discard,
	})
	l.RegisterSink(&zerologSink{zl})
	return l
}

type zerologSink struct{ log zerolog.Logger }

func (s *zerologSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	var ev *zerolog.Event
	switch level {
	case hclog.Trace:
		ev = s.log.Trace()
	case hclog.Debug:
		ev = s.log.Debug()
	case hclog.Warn:
		ev = s.log.Warn()
	case hclog.Error:
		ev = s.log.Error()
	default:
		ev = s.log.Info()
	}
	if !ev.Enabled() {
		return
	}
	ev = ev.Str("module", name)
	for i := 0; i+1 < len(args); i += 2 {
		key := fmt.Sprint(args[i])
		switch v := args[i+1].(type) {
		case error:
			ev = ev.AnErr(key, v)
		case fmt.Stringer:
			ev = ev.Stringer(key, v)
		default:
			ev = ev.Interface(key, v)
		}
	}
	if len(args)%2 == 1 {
		ev = ev.Interface("extra", args[len(args)-1])
	}
	ev.Msg(msg)
}
