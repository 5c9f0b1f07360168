package access

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/dfs-project/dfs/fspath"
)

// MaxFileBytes is the largest rules file Parse reads. A few thousand rules
// fit; a file beyond it is a mistake, not a policy.
const MaxFileBytes = 1 << 20

// ParseError is a rules file the parser refuses, and where.
type ParseError struct {
	Line int // 1-based; 0 when the problem has no line (the file as a whole)
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line <= 0 {
		return e.Msg
	}
	return "line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Parse reads a rules file:
//
//	default: none            # none | read | write, for paths no rule covers (default: none)
//	groups:
//	  staff: [alice, carol]
//	rules:
//	  - path: /home
//	    read: ["*"]          # "*" = every authenticated user
//	  - path: /home/{user}   # {user} = the authenticated user's name
//	    write: ["{user}"]
//	  - path: /shared
//	    read: ["*"]
//	    write: ["@staff"]    # @group
//
// All three keys are optional: an empty file lets nobody do anything. A
// rule path is absolute and clean (as fspath.Clean returns it), "/"
// included, and may hold {user} as whole segments. A list member is "*",
// "{user}" (only in a rule whose path has {user}: elsewhere it would be a
// roundabout "*"), "@group", or a user name; a group lists user names only,
// so groups cannot nest or loop. A rule with neither list denies its
// subtree to everyone. Anything else (an unknown key or level, a group
// nobody defined, a repeated path or key, a YAML alias) refuses the whole
// file with a *ParseError naming the line: half a policy applied is worse
// than the last good one kept.
func Parse(r io.Reader) (*Rules, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileBytes {
		return nil, &ParseError{Msg: fmt.Sprintf("longer than %d bytes", MaxFileBytes)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return build(None, nil), nil
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(err)
		}
		return nil, &ParseError{Line: extra.Line, Msg: "a second YAML document; the file holds one"}
	}
	p := parser{groups: map[string][]string{}}
	if err := p.file(&doc); err != nil {
		return nil, err
	}
	return build(p.def, p.rules), nil
}

func build(def Level, rules []*rule) *Rules {
	rs := &Rules{def: def, rules: rules}
	for _, ru := range rules {
		rs.root.insert(ru)
	}
	return rs
}

// yamlLine is how go.yaml.in/yaml/v3 puts a line number in a syntax error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(err error) *ParseError {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil {
			return &ParseError{Line: n, Msg: "bad YAML: " + m[2]}
		}
	}
	return &ParseError{Msg: "bad YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

type parser struct {
	def    Level
	groups map[string][]string // name -> user names
	rules  []*rule
}

func errAt(n *yaml.Node, format string, args ...any) *ParseError {
	return &ParseError{Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

// mapping returns n's key and value nodes, refusing aliases, merge keys
// and repeated keys (yaml.v3 leaves those to decoding into a map, which we
// do not do: nodes keep the line numbers).
func mapping(n *yaml.Node, what string) (keys, values []*yaml.Node, err error) {
	if n.Kind == yaml.AliasNode {
		return nil, nil, errAt(n, "%s: YAML aliases are not supported", what)
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil, errAt(n, "%s: want a mapping", what)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, nil, errAt(k, "%s: a key must be a plain string", what)
		}
		if v.Kind == yaml.AliasNode {
			return nil, nil, errAt(v, "%s: YAML aliases are not supported", what)
		}
		if first, ok := seen[k.Value]; ok {
			return nil, nil, errAt(k, "%s: key %q repeats the one at line %d", what, k.Value, first)
		}
		seen[k.Value] = k.Line
		keys, values = append(keys, k), append(values, v)
	}
	return keys, values, nil
}

// sequence returns n's items; null is the empty list.
func sequence(n *yaml.Node, what string) ([]*yaml.Node, error) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errAt(n, "%s: want a list", what)
	}
	for _, it := range n.Content {
		if it.Kind == yaml.AliasNode {
			return nil, errAt(it, "%s: YAML aliases are not supported", what)
		}
	}
	return n.Content, nil
}

// scalar returns n's text; null is the empty string.
func scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", errAt(n, "%s: want a single value", what)
	}
	if n.ShortTag() == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

func (p *parser) file(doc *yaml.Node) error {
	top := doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		top = doc.Content[0]
	}
	keys, values, err := mapping(top, "top level")
	if err != nil {
		return err
	}
	var defNode, groupsNode, rulesNode *yaml.Node
	for i, k := range keys {
		switch k.Value {
		case "default":
			defNode = values[i]
		case "groups":
			groupsNode = values[i]
		case "rules":
			rulesNode = values[i]
		default:
			return errAt(k, "unknown key %q (want default, groups or rules)", k.Value)
		}
	}
	if defNode != nil {
		s, err := scalar(defNode, "default")
		if err != nil {
			return err
		}
		if p.def, err = ParseLevel(s); err != nil {
			return errAt(defNode, "default: %v", err)
		}
	}
	// Groups first, wherever they stand in the file: rules refer to them.
	if groupsNode != nil {
		if err := p.parseGroups(groupsNode); err != nil {
			return err
		}
	}
	if rulesNode != nil {
		items, err := sequence(rulesNode, "rules")
		if err != nil {
			return err
		}
		firstAt := map[string]int{}
		for _, it := range items {
			ru, line, err := p.parseRule(it)
			if err != nil {
				return err
			}
			if first, ok := firstAt[ru.path]; ok {
				return &ParseError{Line: line, Msg: fmt.Sprintf("duplicate rule path %q (first at line %d)", ru.path, first)}
			}
			firstAt[ru.path] = line
			p.rules = append(p.rules, ru)
		}
	}
	return nil
}

func (p *parser) parseGroups(n *yaml.Node) error {
	keys, values, err := mapping(n, "groups")
	if err != nil {
		return err
	}
	for i, k := range keys {
		name := k.Value
		if name == "" || strings.ContainsAny(name, "@*{}") {
			return errAt(k, "group name %q: want a name without @, *, { or }", name)
		}
		items, err := sequence(values[i], "group "+name)
		if err != nil {
			return err
		}
		var names []string
		for _, it := range items {
			m, err := scalar(it, "group "+name)
			if err != nil {
				return err
			}
			switch {
			case m == "":
				return errAt(it, "group %s: empty member", name)
			case m == "*" || strings.HasPrefix(m, "@") || strings.HasPrefix(m, "{"):
				return errAt(it, "group %s: member %q: a group lists user names only", name, m)
			}
			names = append(names, m)
		}
		p.groups[name] = names
	}
	return nil
}

// parseRule returns the rule an item of the rules list holds, and the line
// of its path.
func (p *parser) parseRule(n *yaml.Node) (*rule, int, error) {
	keys, values, err := mapping(n, "rule")
	if err != nil {
		return nil, 0, err
	}
	var pathNode, readNode, writeNode *yaml.Node
	for i, k := range keys {
		switch k.Value {
		case "path":
			pathNode = values[i]
		case "read":
			readNode = values[i]
		case "write":
			writeNode = values[i]
		default:
			return nil, 0, errAt(k, "rule: unknown key %q (want path, read or write)", k.Value)
		}
	}
	if pathNode == nil {
		return nil, 0, errAt(n, "rule without a path")
	}
	path, err := scalar(pathNode, "path")
	if err != nil {
		return nil, 0, err
	}
	ru := &rule{path: path}
	if ru.segs, ru.hasUser, err = checkPath(path); err != nil {
		return nil, 0, errAt(pathNode, "path %q: %v", path, err)
	}
	for _, l := range []struct {
		n   *yaml.Node
		key string
		m   *members
	}{{readNode, "read", &ru.read}, {writeNode, "write", &ru.write}} {
		if l.n == nil {
			continue
		}
		if err := p.parseMembers(l.n, l.key, ru.hasUser, l.m); err != nil {
			return nil, 0, err
		}
	}
	return ru, pathNode.Line, nil
}

// checkPath returns a rule path's segments, and whether one is {user}.
func checkPath(path string) (segs []string, hasUser bool, err error) {
	if path == "" {
		return nil, false, errors.New("empty")
	}
	if path[0] != '/' {
		return nil, false, errors.New("not absolute")
	}
	for _, s := range strings.Split(path[1:], "/") {
		switch {
		case s == "..":
			return nil, false, errors.New(`contains ".."`)
		case s == userSeg:
			hasUser = true
		case strings.Contains(s, userSeg):
			return nil, false, errors.New("{user} must be a whole path segment")
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			// Most likely a misspelt {user}: as a literal name it would
			// silently match nothing.
			return nil, false, fmt.Errorf("unknown placeholder %q (only {user} is one)", s)
		}
	}
	clean, err := fspath.Clean(path)
	if err != nil {
		return nil, false, err
	}
	if clean != path {
		return nil, false, fmt.Errorf("not clean (want %q)", clean)
	}
	return fspath.Segments(path), hasUser, nil
}

func (p *parser) parseMembers(n *yaml.Node, key string, hasUser bool, m *members) error {
	items, err := sequence(n, key)
	if err != nil {
		return err
	}
	for _, it := range items {
		s, err := scalar(it, key)
		if err != nil {
			return err
		}
		switch {
		case s == "":
			return errAt(it, "%s: empty member", key)
		case s == "*":
			m.all = true
		case s == userSeg:
			if !hasUser {
				return errAt(it, `%s: {user} in a rule whose path has no {user} segment (use "*" for every user)`, key)
			}
			// The rule reaches a user only through the {user} segment
			// of its path, so it is always that user's rule: {user}
			// here is everyone it applies to.
			m.all = true
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			return errAt(it, "%s: unknown placeholder %q (only {user} is one)", key, s)
		case strings.HasPrefix(s, "@"):
			names, ok := p.groups[s[1:]]
			if !ok {
				return errAt(it, "%s: unknown group %q", key, s[1:])
			}
			for _, name := range names {
				m.add(name)
			}
		default:
			m.add(s)
		}
	}
	return nil
}

func (m *members) add(name string) {
	if m.names == nil {
		m.names = map[string]struct{}{}
	}
	m.names[name] = struct{}{}
}
