package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDigestEscapesAndOverrides(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	d := DigestData{
		BotName: "Visa", BotAddress: "visa@x.test", SpaceID: "s", SpaceName: "<b>S</b>", Title: "week of 30 Nov 2026",
		EndingDays: 30, Attachment: "s-roster.csv",
		Members: []DigestMember{{Email: "a@x.test", Name: "<script>alert(1)</script>", Status: "active"}},
		Changes: []DigestChange{{When: "Mon 30 Nov 08:00", Actor: "m@x.test", Text: "added member a@x.test"}},
	}
	text, html, err := s.Digest(d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(text, "\n") || !strings.Contains(text, "<script>alert(1)</script> <a@x.test>  active") {
		t.Errorf("text:\n%s", text)
	}
	if strings.Contains(html, "<script>") || strings.Contains(html, "<b>S</b>") || !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("HTML does not escape names:\n%s", html)
	}
	ntext, nhtml, err := s.NetworkDigest(NetworkDigestData{BotName: "Visa", Title: "week of 30 Nov 2026",
		Spaces: []NetworkSpace{{ID: "s", Name: "<i>S</i>", Members: 3}}, TotalMembers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ntext, "1 space, 3 members") || strings.Contains(nhtml, "<i>S</i>") {
		t.Errorf("network digest:\n%s\n%s", ntext, nhtml)
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "digest.txt"), []byte("Digest of {{.SpaceName}}"), 0o644)
	s, err = New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if text, _, err := s.Digest(d); err != nil || text != "Digest of <b>S</b>" {
		t.Errorf("overridden digest = %q, %v", text, err)
	}
}

func TestDigestAddedElsewhere(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	d := DigestData{SpaceName: "Indy Hall", AddedElsewhere: []DigestAdd{
		{When: "Sat 28 Nov 05:00", Member: "amy@x.test", Space: "<i>Cantine</i>", Actor: "boss@cantine.test"}}}
	text, html, err := s.Digest(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "Your members added to another space's roster (1):\n  Sat 28 Nov 05:00  amy@x.test added to <i>Cantine</i> by boss@cantine.test\n") {
		t.Errorf("text:\n%s", text)
	}
	if strings.Contains(html, "<i>Cantine") || !strings.Contains(html, "amy@x.test added to &lt;i&gt;Cantine&lt;/i&gt; by boss@cantine.test") {
		t.Errorf("HTML:\n%s", html)
	}
	text, _, _ = s.Digest(DigestData{SpaceName: "Indy Hall"})
	// Nothing to act on: the section says so in a line, and lists nothing.
	if !strings.Contains(text, "=== To act on ===\nNothing this week.\n") || strings.Contains(text, "another space's roster") {
		t.Errorf("text without any:\n%s", text)
	}
}
