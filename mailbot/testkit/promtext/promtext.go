// Package promtext is test equipment: a strict reader of the Prometheus
// text exposition format (version 0.0.4), so that tests check /metrics as
// a Prometheus server would read it, without its client libraries.
//
// It checks what a scraper relies on: every line is a comment, a HELP or
// TYPE line, or a sample `name{label="value",…} value`; a family has one
// TYPE, before its first sample, and its samples come together; a sample
// name is never repeated; a counter's name ends in _total; a histogram
// has _bucket lines with ascending le bounds up to +Inf, whose last count
// equals its _count.
package promtext

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Exposition is what a page holds.
type Exposition struct {
	// Samples maps each series, written as on the page without spaces
	// (name{a="x",b="y"}, labels in page order), to its value.
	Samples map[string]float64
	// Types maps each family with a TYPE line to its type.
	Types map[string]string
	// Help maps each family with a HELP line to its text.
	Help map[string]string
}

// Value returns the value of a series, or false when there is none.
func (e *Exposition) Value(series string) (float64, bool) {
	v, ok := e.Samples[series]
	return v, ok
}

// Sum adds up the values of every series of a family whose labels include
// all the given pairs (name, value, name, value…).
func (e *Exposition) Sum(family string, labels ...string) float64 {
	var sum float64
	for s, v := range e.Samples {
		name, lbls, _ := strings.Cut(s, "{")
		if name != family {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains("{"+lbls, fmt.Sprintf("%s=%q", labels[i], labels[i+1])) {
				match = false
			}
		}
		if match {
			sum += v
		}
	}
	return sum
}

var (
	metricName = `[a-zA-Z_:][a-zA-Z0-9_:]*`
	labelPair  = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"`
	sampleRe   = regexp.MustCompile(`^(` + metricName + `)(\{(?:` + labelPair + `(?:,` + labelPair + `)*,?)?\})? (\S+)( -?[0-9]+)?$`)
	helpRe     = regexp.MustCompile(`^# HELP (` + metricName + `) (.*)$`)
	typeRe     = regexp.MustCompile(`^# TYPE (` + metricName + `) (counter|gauge|histogram|summary|untyped)$`)
	leRe       = regexp.MustCompile(`le="([^"]*)"`)
	pairRe     = regexp.MustCompile(labelPair)
)

// Parse reads a page and checks it; the error lists every problem found,
// each with its line number.
func Parse(text string) (*Exposition, error) {
	e := &Exposition{Samples: map[string]float64{}, Types: map[string]string{}, Help: map[string]string{}}
	var errs []error
	bad := func(n int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("line %d: %s", n, fmt.Sprintf(format, args...)))
	}
	seenFamily := map[string]bool{}   // families whose samples have begun
	current := ""                     // the family of the samples being read
	buckets := map[string][]float64{} // histogram series (family and labels but le) → bounds
	infCount := map[string]float64{}  // and their +Inf bucket's count
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "# HELP "):
			m := helpRe.FindStringSubmatch(line)
			if m == nil {
				bad(n, "malformed HELP: %q", line)
				continue
			}
			if _, dup := e.Help[m[1]]; dup {
				bad(n, "second HELP for %s", m[1])
			}
			e.Help[m[1]] = m[2]
			continue
		case strings.HasPrefix(line, "# TYPE "):
			m := typeRe.FindStringSubmatch(line)
			if m == nil {
				bad(n, "malformed TYPE: %q", line)
				continue
			}
			if _, dup := e.Types[m[1]]; dup {
				bad(n, "second TYPE for %s", m[1])
			}
			if seenFamily[m[1]] {
				bad(n, "TYPE for %s after its samples", m[1])
			}
			if m[2] == "counter" && !strings.HasSuffix(m[1], "_total") {
				bad(n, "counter %s does not end in _total", m[1])
			}
			e.Types[m[1]] = m[2]
			continue
		case line[0] == '#':
			continue // a comment
		}
		m := sampleRe.FindStringSubmatch(line)
		if m == nil {
			bad(n, "not a sample: %q", line)
			continue
		}
		name, labels, value := m[1], m[2], m[3]
		v, err := parseValue(value)
		if err != nil {
			bad(n, "value %q: %v", value, err)
			continue
		}
		fam := familyOf(e.Types, name)
		if fam != current {
			if seenFamily[fam] {
				bad(n, "samples of %s are not together", fam)
			}
			seenFamily[fam], current = true, fam
		}
		key := name + labels
		if _, dup := e.Samples[key]; dup {
			bad(n, "series %s twice", key)
		}
		e.Samples[key] = v
		if e.Types[fam] == "histogram" && strings.HasSuffix(name, "_bucket") {
			le := leRe.FindStringSubmatch(labels)
			if le == nil {
				bad(n, "bucket without le: %q", line)
				continue
			}
			bound, err := parseValue(le[1])
			if err != nil {
				bad(n, "le %q: %v", le[1], err)
				continue
			}
			series := fam + withoutLE(labels)
			if b := buckets[series]; len(b) > 0 && bound <= b[len(b)-1] {
				bad(n, "le %v not above the previous bucket's", bound)
			}
			buckets[series] = append(buckets[series], bound)
			if math.IsInf(bound, 1) {
				infCount[series] = v
			}
		}
	}
	for series, bounds := range buckets {
		if !math.IsInf(bounds[len(bounds)-1], 1) {
			errs = append(errs, fmt.Errorf("histogram %s has no +Inf bucket", series))
			continue
		}
		fam, labels, _ := strings.Cut(series, "{")
		if labels != "" {
			labels = "{" + labels
		}
		if count, ok := e.Samples[fam+"_count"+labels]; !ok || count != infCount[series] {
			errs = append(errs, fmt.Errorf("histogram %s: _count %v (present: %v), +Inf bucket %v", series, count, ok, infCount[series]))
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return e, errors.Join(errs...)
}

// familyOf is the family a sample belongs to: its own name, or for a
// histogram's _bucket, _sum and _count lines, the histogram's.
func familyOf(types map[string]string, name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && types[base] == "histogram" {
			return base
		}
	}
	return name
}

// withoutLE drops the le pair from a histogram bucket's labels.
func withoutLE(labels string) string {
	var kept []string
	for _, p := range pairRe.FindAllString(labels, -1) {
		if !strings.HasPrefix(p, "le=") {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		return ""
	}
	return "{" + strings.Join(kept, ",") + "}"
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}
