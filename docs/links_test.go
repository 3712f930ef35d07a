// Package docs holds the project's documentation; its test checks the
// links of the README and of every page here.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// inlineLink is a Markdown link or image: [text](target) or ![alt](target).
var inlineLink = regexp.MustCompile(`\]\(([^()\s]+)\)`)

// TestRelativeLinks: every relative link of README.md and docs/*.md names
// a file of the repository, and every #anchor a heading of its page, with
// GitHub's heading ids.
func TestRelativeLinks(t *testing.T) {
	pages, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join("..", "README.md"))
	if len(pages) < 2 {
		t.Fatalf("no pages found: %v", pages)
	}
	checked := 0
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, link := range links(string(text)) {
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			checked++
			path, anchor, _ := strings.Cut(link, "#")
			target := page
			if path != "" {
				target = filepath.Join(filepath.Dir(page), path)
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: link %s: no file %s", page, link, target)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			body, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			if ids := headingIDs(string(body)); !ids[anchor] {
				t.Errorf("%s: link %s: %s has no heading with id %q", page, link, target, anchor)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative links found: the link pattern no longer matches the pages")
	}
}

// links are the inline link targets of a Markdown text, outside code.
func links(text string) []string {
	var out []string
	for _, line := range proseLines(text) {
		for _, m := range inlineLink.FindAllStringSubmatch(stripCodeSpans(line), -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// proseLines are the lines outside fenced code blocks.
func proseLines(text string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, line)
		}
	}
	return out
}

var codeSpan = regexp.MustCompile("`[^`]*`")

func stripCodeSpans(line string) string { return codeSpan.ReplaceAllString(line, "") }

// headingIDs are the ids GitHub gives a page's headings: lower case,
// punctuation dropped except - and _, spaces to -, and -1, -2, ... on
// repeats.
func headingIDs(text string) map[string]bool {
	ids := map[string]bool{}
	seen := map[string]int{}
	for _, line := range proseLines(text) {
		trimmed := strings.TrimLeft(line, "#")
		if len(trimmed) == len(line) || len(line)-len(trimmed) > 6 || !strings.HasPrefix(trimmed, " ") {
			continue
		}
		id := slug(strings.TrimSpace(trimmed))
		if n := seen[id]; n > 0 {
			ids[id+"-"+strconv.Itoa(n)] = true
		} else {
			ids[id] = true
		}
		seen[id]++
	}
	return ids
}

func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestHeadingIDs holds the slugs to ids GitHub gave these headings.
func TestHeadingIDs(t *testing.T) {
	ids := headingIDs("# The data plane: connections through the imported names\n" +
		"## What `import` creates in the consumer\n" +
		"### 7. Continuous mode at fleet scale\n" +
		"### Writes: 200 services (every other one ClusterIP) × 2 sources × 50 endpoints\n" +
		"## Notes\n## Notes\n" +
		"```sh\n# not a heading\n```\n")
	for _, want := range []string{
		"the-data-plane-connections-through-the-imported-names",
		"what-import-creates-in-the-consumer",
		"7-continuous-mode-at-fleet-scale",
		"writes-200-services-every-other-one-clusterip--2-sources--50-endpoints",
		"notes", "notes-1",
	} {
		if !ids[want] {
			t.Errorf("no id %q in %v", want, ids)
		}
	}
	if ids["not-a-heading"] {
		t.Error("a comment in a code block was taken for a heading")
	}
}
