package dns

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A Corefile is edited as text, so that everything kubectl-mcs does not
// touch (other plugins, comments, indentation, blank lines) stays byte for
// byte. This file reads just enough structure for that: tokens with their
// byte offsets, lexed the way CoreDNS's Caddy lexer does (whitespace
// separates, '#' starts a comment anywhere, a token starting with '"' runs
// to the closing quote), grouped into server blocks, directives and their
// brace blocks. It is not a Caddyfile parser: no imports, snippets or
// environment variables are expanded.

type token struct {
	text string
	// start and end are byte offsets in the source; a quoted token's span
	// includes its quotes.
	start, end int
	// line and endLine are 1-based; they differ for a quoted token that
	// spans lines.
	line, endLine int
}

func lexCorefile(src string) ([]token, error) {
	var toks []token
	line := 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		switch {
		case r == '\n':
			line++
			i += size
		case unicode.IsSpace(r):
			i += size
		case r == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case r == '"':
			t, next, lines, err := lexQuoted(src, i)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			t.line, t.endLine = line, line+lines
			toks = append(toks, t)
			line += lines
			i = next
		default:
			j := i
			for j < len(src) {
				r, size := utf8.DecodeRuneInString(src[j:])
				if unicode.IsSpace(r) || r == '#' {
					break
				}
				j += size
			}
			toks = append(toks, token{text: src[i:j], start: i, end: j, line: line, endLine: line})
			i = j
		}
	}
	return toks, nil
}

// lexQuoted reads a quoted token starting at src[start] == '"'. As in
// Caddy, only \" is an escape; any other backslash is kept.
func lexQuoted(src string, start int) (t token, next, lines int, err error) {
	var b strings.Builder
	for j := start + 1; j < len(src); j++ {
		switch c := src[j]; {
		case c == '\\' && j+1 < len(src) && src[j+1] == '"':
			b.WriteByte('"')
			j++
		case c == '"':
			return token{text: b.String(), start: start, end: j + 1}, j + 1, lines, nil
		default:
			if c == '\n' {
				lines++
			}
			b.WriteByte(c)
		}
	}
	return token{}, 0, 0, fmt.Errorf("a quoted string is not closed")
}

// serverBlock is `keys... { directives }`.
type serverBlock struct {
	keys       []token
	directives []*directive
}

// directive is a line `name args... [{ lines }]`, at server level or inside
// another directive's block.
type directive struct {
	name token
	args []token
	// block is nil when the directive has none.
	block *block
	// last is the directive's last token: its closing brace, or its last
	// argument.
	last token
}

type block struct {
	open, close token
	lines       []*directive
}

type corefile struct {
	src    string
	blocks []*serverBlock
}

func parseCorefile(src string) (*corefile, error) {
	toks, err := lexCorefile(src)
	if err != nil {
		return nil, err
	}
	cf := &corefile{src: src}
	for i := 0; i < len(toks); {
		sb := &serverBlock{}
		// Keys run to the opening brace; a key ending with ',' continues on
		// the next line.
		for i < len(toks) && toks[i].text != "{" {
			if len(sb.keys) > 0 && onNewLine(toks, i) && !strings.HasSuffix(sb.keys[len(sb.keys)-1].text, ",") {
				break
			}
			sb.keys = append(sb.keys, toks[i])
			i++
		}
		if i >= len(toks) || toks[i].text != "{" {
			if len(cf.blocks) > 0 || len(sb.keys) == 0 {
				return nil, fmt.Errorf("line %d: expected '{' after the server block keys", lastLine(toks, i))
			}
			// A single server block may omit its braces.
			lines, next, err := parseLines(toks, i)
			if err != nil {
				return nil, err
			}
			if next < len(toks) {
				return nil, fmt.Errorf("line %d: unexpected '}'", toks[next].line)
			}
			sb.directives = lines
			cf.blocks = append(cf.blocks, sb)
			break
		}
		b, next, err := parseBlock(toks, i)
		if err != nil {
			return nil, err
		}
		sb.directives = b.lines
		cf.blocks = append(cf.blocks, sb)
		i = next
	}
	return cf, nil
}

// parseBlock reads `{ lines }` starting at the opening brace.
func parseBlock(toks []token, i int) (*block, int, error) {
	b := &block{open: toks[i]}
	lines, next, err := parseLines(toks, i+1)
	if err != nil {
		return nil, 0, err
	}
	if next >= len(toks) {
		return nil, 0, fmt.Errorf("line %d: '{' is never closed", b.open.line)
	}
	b.lines, b.close = lines, toks[next]
	return b, next + 1, nil
}

// parseLines reads directives until a closing brace (returned as next) or
// the end of the tokens.
func parseLines(toks []token, i int) (lines []*directive, next int, err error) {
	for i < len(toks) && toks[i].text != "}" {
		if toks[i].text == "{" {
			return nil, 0, fmt.Errorf("line %d: '{' must follow a directive on the same line", toks[i].line)
		}
		d := &directive{name: toks[i], last: toks[i]}
		i++
		// As in Caddy, a directive runs to the end of its line, and a
		// block opened on that line extends it to the block's end.
		for i < len(toks) && !onNewLine(toks, i) && toks[i].text != "}" {
			if toks[i].text == "{" {
				if d.block != nil {
					return nil, 0, fmt.Errorf("line %d: a directive has one block", toks[i].line)
				}
				b, next, err := parseBlock(toks, i)
				if err != nil {
					return nil, 0, err
				}
				d.block, d.last, i = b, b.close, next
				continue
			}
			if d.block == nil {
				d.args = append(d.args, toks[i])
			}
			d.last = toks[i]
			i++
		}
		lines = append(lines, d)
	}
	return lines, i, nil
}

func onNewLine(toks []token, i int) bool { return i > 0 && toks[i].line > toks[i-1].endLine }

func lastLine(toks []token, i int) int {
	if i < len(toks) {
		return toks[i].line
	}
	if len(toks) > 0 {
		return toks[len(toks)-1].endLine
	}
	return 1
}

// lineStart is the offset of the first byte of the line holding offset.
func (cf *corefile) lineStart(offset int) int {
	return strings.LastIndexByte(cf.src[:offset], '\n') + 1
}

// lineEnd is the offset just past the newline ending the line holding
// offset (the end of the source on the last line).
func (cf *corefile) lineEnd(offset int) int {
	if i := strings.IndexByte(cf.src[offset:], '\n'); i >= 0 {
		return offset + i + 1
	}
	return len(cf.src)
}

// firstOnLine says whether only whitespace precedes t on its line.
func (cf *corefile) firstOnLine(t token) bool {
	return strings.TrimSpace(cf.src[cf.lineStart(t.start):t.start]) == ""
}

// lastOnLine says whether only whitespace or a comment follows t on its
// line.
func (cf *corefile) lastOnLine(t token) bool {
	rest := strings.TrimSpace(cf.src[t.end:cf.lineEnd(t.end)])
	return rest == "" || strings.HasPrefix(rest, "#")
}

// indent is the whitespace before t when t starts its line.
func (cf *corefile) indent(t token) string {
	if !cf.firstOnLine(t) {
		return ""
	}
	return cf.src[cf.lineStart(t.start):t.start]
}

// lineText is t's whole line, without its newline, for messages.
func (cf *corefile) lineText(t token) string {
	return strings.TrimSpace(cf.src[cf.lineStart(t.start):cf.lineEnd(t.start)])
}

// directivesNamed lists the directives of a block level called name.
func directivesNamed(lines []*directive, name string) []*directive {
	var out []*directive
	for _, d := range lines {
		if d.name.text == name {
			out = append(out, d)
		}
	}
	return out
}

// tokens lists every token of d, its block's included, for searches.
func (d *directive) tokens() []token {
	out := append([]token{d.name}, d.args...)
	if d.block != nil {
		for _, l := range d.block.lines {
			out = append(out, l.tokens()...)
		}
	}
	return out
}
