package promtext

import (
	"strings"
	"testing"
)

func TestParseGood(t *testing.T) {
	page := `# HELP a_total As.
# TYPE a_total counter
a_total{x="1",y="two"} 3
a_total{x="2",y="two"} 4
# TYPE h_seconds histogram
h_seconds_bucket{le="0.1"} 1
h_seconds_bucket{le="+Inf"} 2
h_seconds_sum 0.5
h_seconds_count 2
untyped_thing 1.5e+06
`
	e, err := Parse(page)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := e.Value(`a_total{x="1",y="two"}`); v != 3 {
		t.Errorf("a_total x=1 = %v", v)
	}
	if s := e.Sum("a_total", "y", "two"); s != 7 {
		t.Errorf("Sum y=two = %v, want 7", s)
	}
	if e.Types["h_seconds"] != "histogram" || e.Help["a_total"] != "As." {
		t.Errorf("types %v, help %v", e.Types, e.Help)
	}
}

func TestParseBad(t *testing.T) {
	for _, tc := range []struct{ name, page, want string }{
		{"garbage", "hello world\n", "value \"world\""},
		{"no value", "hello\n", "not a sample"},
		{"bad value", "a 1x\n", "value"},
		{"counter without _total", "# TYPE a counter\na 1\n", "does not end in _total"},
		{"TYPE after samples", "a_total 1\n# TYPE a_total counter\n", "after its samples"},
		{"two TYPEs", "# TYPE a gauge\n# TYPE a gauge\na 1\n", "second TYPE"},
		{"split family", "a 1\nb 1\na{x=\"1\"} 2\n", "not together"},
		{"series twice", "a 1\na 2\n", "twice"},
		{"unquoted label", "a{x=1} 1\n", "not a sample"},
		{"buckets out of order", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", "not above"},
		{"no +Inf", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n", "no +Inf"},
		{"count differs", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n", "_count 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.page)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want an error with %q", err, tc.want)
			}
		})
	}
}
