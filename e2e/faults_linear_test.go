// The fault suite's history checkers that need no Docker (no build tag, so
// that TestLinearizabilityModel and TestExclusiveLockCheck run with a plain
// `go test ./e2e -run 'TestLinearizabilityModel|TestExclusiveLockCheck'`):
//
//   - linearizability of the shared register paths (/fc-reg/r<i>), checked
//     with porcupine: each path is a register whose state is "absent" or
//     the SHA-256 of its content; PUT writes its content's hash, DELETE
//     writes "absent" (a DELETE answered 404 reads "absent"), GET reads the
//     state, PROPFIND reads "present" or "absent". Every client PUTs, GETs,
//     PROPFINDs and DELETEs every register path concurrently, through its
//     own node; no MOVE or COPY touches them, so each path is checked on
//     its own;
//   - false answers: a write acknowledged although the reads after it
//     prove it was not applied (falseWrites), and two clients holding one
//     exclusive lock at the same time (doubleGrants).
//
// TestFaults (faults_*.go, build tag docker) records the history and calls
// these once the faults have healed.

package e2e

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

const (
	stAbsent  = "absent"
	stDir     = "dir"
	stPresent = "present" // a PROPFIND found the file (its content is not read)
	propNS    = "urn:dfs-faults:"
)

type outcome int

const (
	opOK      outcome = iota // acknowledged (2xx)
	opFailed                 // definitely not done (a 4xx that says so)
	opUnknown                // timeout, connection error, 5xx
)

func (o outcome) String() string {
	return [...]string{"ok", "failed", "unknown"}[o]
}

// regOp is one operation on a register path, with its times relative to
// the run's start.
type regOp struct {
	Client string
	Node   string
	Path   string
	Kind   string // PUT, DELETE, GET, PROPFIND
	// Value is what a PUT writes (its content's hash) or what a read saw:
	// a hash or stAbsent (GET), stPresent or stAbsent (PROPFIND).
	Value        string
	Status       int // the HTTP status, 0 without an answer
	Outcome      outcome
	Call, Return time.Duration
}

// regInput is a porcupine input: a write of value, or a read (whose output
// is the value seen).
type regInput struct {
	write bool
	value string
}

const never = time.Duration(math.MaxInt64) // the return of an operation whose outcome is unknown

// registerModel is one path as a register.
var registerModel = porcupine.Model{
	Init: func() any { return stAbsent },
	Step: func(state, input, output any) (bool, any) {
		s, in := state.(string), input.(regInput)
		if in.write {
			return true, in.value
		}
		switch seen := output.(string); seen {
		case stPresent:
			return s != stAbsent, s
		default:
			return s == seen, s
		}
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return "write " + short(in.value)
		}
		return "read " + short(output.(string))
	},
	DescribeState: func(state any) string { return short(state.(string)) },
}

func short(s string) string {
	if strings.HasPrefix(s, "sha256:") && len(s) > 15 {
		return s[7:15]
	}
	return s
}

// isWrite tells whether op may have changed the register: a PUT or DELETE
// that was acknowledged or whose outcome is unknown. A DELETE answered 404
// is a read of "absent"; other failed writes did nothing.
func (op regOp) isWrite() bool {
	return (op.Kind == "PUT" || op.Kind == "DELETE") && op.Outcome != opFailed
}

// isRead tells whether op observed the register, and what.
func (op regOp) isRead() (string, bool) {
	switch {
	case (op.Kind == "GET" || op.Kind == "PROPFIND") && op.Outcome == opOK:
		return op.Value, true
	case op.Kind == "DELETE" && op.Outcome == opFailed && op.Status == 404:
		return stAbsent, true
	}
	return "", false
}

// written is the value a write sets.
func (op regOp) written() string {
	if op.Kind == "DELETE" {
		return stAbsent
	}
	return op.Value
}

// porcupineOps turns one path's operations into porcupine's. Reads that
// told nothing and writes that failed are left out. A write whose outcome
// is unknown may take effect at any time after it was sent, so it returns
// at infinity, with two exact reductions: a PUT whose (unique) content no
// read ever saw is dropped (placed last, after every read, it changes
// nothing a read saw, so the history is linearizable with it iff it is
// without it), and a PUT whose content a read saw returns when the first
// such read returned (it must be linearized before that read anyway).
// Without them every lost connection during a fault would double the
// search. It returns porcupine's operations, the operations they stand for
// (with Return set to never for those pending at infinity), and how many
// are pending.
func porcupineOps(ops []regOp, clients map[string]int) ([]porcupine.Operation, []regOp, int) {
	firstSeen := map[string]time.Duration{} // value -> earliest return of a read that saw it
	for _, op := range ops {
		if v, ok := op.isRead(); ok {
			if t, seen := firstSeen[v]; !seen || op.Return < t {
				firstSeen[v] = op.Return
			}
		}
	}
	var out []porcupine.Operation
	var kept []regOp
	pending := 0
	for _, op := range ops {
		id, ok := clients[op.Client]
		if !ok {
			id = len(clients)
			clients[op.Client] = id
		}
		pop := porcupine.Operation{ClientId: id, Call: int64(op.Call), Return: int64(op.Return),
			Metadata: fmt.Sprintf("%s %s via %s: %d %s", op.Client, op.Kind, op.Node, op.Status, op.Outcome)}
		if v, ok := op.isRead(); ok {
			pop.Input, pop.Output = regInput{}, v
			out, kept = append(out, pop), append(kept, op)
			continue
		}
		if !op.isWrite() {
			continue
		}
		pop.Input, pop.Output = regInput{write: true, value: op.written()}, ""
		if op.Outcome == opUnknown {
			t, seen := firstSeen[op.written()]
			switch {
			case op.Kind == "PUT" && !seen:
				continue
			case op.Kind == "PUT" && t >= op.Call:
				pop.Return = int64(t)
			default:
				pop.Return = int64(never)
				op.Return = never
				pending++
			}
		}
		out, kept = append(out, pop), append(kept, op)
	}
	return out, kept, pending
}

// regResult is the linearizability verdict on one path.
type regResult struct {
	Path          string
	Result        porcupine.CheckResult
	Ops, Pending  int
	Took          time.Duration
	Visualization string // an HTML file showing the longest linearizable prefixes, for an illegal history
	Explanation   string // for an illegal history: where the longest linearization gets stuck
}

// checkRegisters checks every path's history for linearizability, each
// within timeout (porcupine.Unknown when it runs out). For an illegal
// history it writes porcupine's visualization into dir (if not empty).
func checkRegisters(ops []regOp, timeout time.Duration, dir string) []regResult {
	byPath := map[string][]regOp{}
	for _, op := range ops {
		byPath[op.Path] = append(byPath[op.Path], op)
	}
	var out []regResult
	for _, path := range slices.Sorted(maps.Keys(byPath)) {
		clients := map[string]int{}
		hist, kept, pending := porcupineOps(byPath[path], clients)
		start := time.Now()
		res := porcupine.CheckOperationsTimeout(registerModel, hist, timeout)
		rr := regResult{Path: path, Result: res, Ops: len(hist), Pending: pending, Took: time.Since(start)}
		if res == porcupine.Illegal {
			_, info := porcupine.CheckOperationsVerbose(registerModel, hist, timeout)
			rr.Explanation = explain(kept, info)
			if dir != "" {
				file := filepath.Join(dir, "linearizability"+strings.ReplaceAll(path, "/", "-")+".html")
				if err := porcupine.VisualizePath(registerModel, info, file); err == nil {
					rr.Visualization = file
				}
			}
		}
		out = append(out, rr)
	}
	return out
}

// explain describes where an illegal history gets stuck: the operation
// that returned first among those the longest linearizable prefix leaves
// out, the state that prefix ends in, and the operations of the 3 s
// before it (L: in the prefix).
func explain(ops []regOp, info porcupine.LinearizationInfo) string {
	partials := info.PartialLinearizations()
	if len(partials) == 0 || len(partials[0]) == 0 {
		return ""
	}
	best := slices.MaxFunc(partials[0], func(a, b []int) int { return cmp.Compare(len(a), len(b)) })
	in := map[int]bool{}
	state := stAbsent
	for _, i := range best {
		in[i] = true
		if ops[i].isWrite() {
			state = ops[i].written()
		}
	}
	stuck := -1
	for i, op := range ops {
		if !in[i] && (stuck < 0 || op.Return < ops[stuck].Return) {
			stuck = i
		}
	}
	if stuck < 0 {
		return ""
	}
	s := ops[stuck]
	var b strings.Builder
	fmt.Fprintf(&b, "stuck at %s; the longest linearization (%d of %d operations) ends in state %s; the operations around it:",
		describeOp(s), len(best), len(ops), short(state))
	for i, op := range ops {
		if op.Return >= s.Call-3*time.Second && op.Call <= s.Return {
			mark := " "
			switch {
			case i == stuck:
				mark = "*"
			case in[i]:
				mark = "L"
			}
			fmt.Fprintf(&b, "\n  %s %s", mark, describeOp(op))
		}
	}
	return b.String()
}

func describeOp(op regOp) string {
	ret := "∞"
	if op.Return != never {
		ret = fmt.Sprintf("%.3fs", op.Return.Seconds())
	}
	what := "writes " + short(op.written())
	if v, ok := op.isRead(); ok {
		what = "reads " + short(v)
	}
	return fmt.Sprintf("[%.3fs, %s] %s %s via %s (%d %s) %s", op.Call.Seconds(), ret, op.Client, op.Kind, op.Node, op.Status, op.Outcome, what)
}

// falseWrites finds acknowledged writes that the reads after them prove
// were not applied: a PUT or DELETE answered 2xx, followed (after its
// answer) by reads of the path, none of which sees its value, while no
// other write to the path could have taken effect in between. Each such
// write is one false answer. (Reads that disagree among themselves are a
// linearizability violation, not a false answer.)
//
// "Could have taken effect in between" is decided as in porcupineOps: a
// write whose outcome is unknown ends at infinity, except that a PUT whose
// content no read ever saw cannot explain any read (if it applied, the
// next read saw it or a later write) and is ignored, and a PUT whose
// content was seen ends when it was first seen. A DELETE whose outcome is
// unknown can only explain reads of "absent", so it limits the reads of
// "absent" that count, not the others; without that, one lost connection
// would exempt every later write to the path.
func falseWrites(ops []regOp) []string {
	firstSeen := map[string]time.Duration{}
	for _, op := range ops {
		if v, ok := op.isRead(); ok {
			if t, seen := firstSeen[v]; !seen || op.Return < t {
				firstSeen[v] = op.Return
			}
		}
	}
	byPath := map[string][]regOp{}
	for _, op := range ops {
		byPath[op.Path] = append(byPath[op.Path], op)
	}
	var out []string
	for _, path := range slices.Sorted(maps.Keys(byPath)) {
		pops := byPath[path]
		for i, p := range pops {
			if !p.isWrite() || p.Outcome != opOK {
				continue
			}
			// The first moment another write may take effect after p:
			// any write (horizon), any but unknown DELETEs (horizonPut).
			horizon, horizonPut := never, never
			for j, w := range pops {
				if j == i || !w.isWrite() {
					continue
				}
				end, unknownDelete := w.Return, false
				if w.Outcome == opUnknown {
					t, seen := firstSeen[w.written()]
					switch {
					case w.Kind == "PUT" && !seen:
						continue
					case w.Kind == "PUT" && t >= w.Call:
						end = t
					default:
						end, unknownDelete = never, w.Kind == "DELETE"
					}
				}
				if end < p.Call {
					continue
				}
				horizon = min(horizon, w.Call)
				if !unknownDelete {
					horizonPut = min(horizonPut, w.Call)
				}
			}
			var window []regOp
			agree := false
			for _, r := range pops {
				v, ok := r.isRead()
				if !ok || r.Call <= p.Return || r.Return >= horizonPut || (v == stAbsent && r.Return >= horizon) {
					continue
				}
				window = append(window, r)
				if v == p.written() || (v == stPresent && p.written() != stAbsent) {
					agree = true
				}
			}
			if len(window) > 0 && !agree {
				r := window[0]
				out = append(out, fmt.Sprintf("false answer: %s %s by %s via %s answered %d at %v (writes %s), but the %d reads after it with no other write possible in between see otherwise, e.g. %s by %s via %s at %v: %s",
					p.Kind, path, p.Client, p.Node, p.Status, p.Return, short(p.written()), len(window), r.Kind, r.Client, r.Node, r.Call, short(r.Value)))
			}
		}
	}
	return out
}

// lockGrant is an exclusive lock a client was granted (LOCK answered 200)
// on the shared lock target, with times relative to the run's start.
type lockGrant struct {
	Client, Node, Token string
	Call, Return        time.Duration // the LOCK request
	Release             time.Duration // when the client sent UNLOCK (or gave up on the lock)
	Timeout             time.Duration // the lock's timeout, as granted
}

// held is when the lock was certainly held: from the LOCK's answer (it was
// granted by then) until the client sent UNLOCK or, if earlier, the
// earliest moment it can have expired (the timeout counted from the LOCK
// request, before the grant).
func (g lockGrant) held() (from, to time.Duration) {
	return g.Return, min(g.Release, g.Call+g.Timeout)
}

// doubleGrants finds pairs of exclusive locks on one path that were both
// held at the same moment: each pair is one false answer (one of the two
// 200s cannot be true).
func doubleGrants(path string, gs []lockGrant) []string {
	gs = slices.Clone(gs)
	slices.SortFunc(gs, func(a, b lockGrant) int { return cmp.Compare(a.Return, b.Return) })
	var out []string
	for i, a := range gs {
		af, at := a.held()
		if at <= af {
			continue
		}
		for _, b := range gs[i+1:] {
			bf, bt := b.held()
			if bf >= at {
				break // sorted by start: no later grant overlaps a
			}
			if bt > bf && bf < at && af < bt {
				out = append(out, fmt.Sprintf("false answer: two exclusive locks on %s held at once: %s via %s (token %s) held it from %v to %v, %s via %s (token %s) from %v to %v",
					path, a.Client, a.Node, a.Token, af, at, b.Client, b.Node, b.Token, bf, bt))
			}
		}
	}
	return out
}
