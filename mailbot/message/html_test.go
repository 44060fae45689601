package message

import (
	"strings"
	"testing"
)

func TestHTMLToText(t *testing.T) {
	tests := []struct {
		name string
		html string
		want string
	}{{
		name: "Gmail reply with signature and quote",
		html: `<div dir="ltr"><div>verify <a href="mailto:bob@example.org">bob@example.org</a></div>` +
			`<div>add member carol@example.org name=&quot;Carol Díaz&quot;</div><div><br></div><div>Thanks,</div>` +
			`<br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span><br>` +
			`<div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature"><div dir="ltr"><div>Marta Ruiz</div>` +
			`<div>add member sig@example.org</div></div></div></div><br>` +
			`<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">On Tue, 3 Mar 2026 at 10:00, ` +
			`Coworking Visa &lt;visa@example.org&gt; wrote:<br></div><blockquote class="gmail_quote" ` +
			`style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">&gt; add member old@example.org</blockquote></div>`,
		want: "verify bob@example.org\nadd member carol@example.org name=\"Carol Díaz\"\n\nThanks,\n\n\n--",
	}, {
		name: "signature marked only by data-smartmail",
		html: `<div>verify b@x</div><div data-smartmail="gmail_signature">Marta<div>nested</div>still sig</div><div>after</div>`,
		want: "verify b@x\nafter",
	}, {
		name: "Outlook desktop: Word reply header with a top border",
		html: `<div class=WordSection1><p class=MsoNormal>verify b@x<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>` +
			`<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'><p class=MsoNormal><b>From:</b> Visa` +
			`<br><b>Sent:</b> Monday</p></div><p class=MsoNormal>&gt; add member old@x</p></div>`,
		want: "verify b@x",
	}, {
		name: "Outlook on the web: hr and divRplyFwdMsg",
		html: `<div class="elementToProof">verify b@x</div><div id="Signature"><p>Peter</p></div>` +
			`<hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg"><b>From:</b> Visa</div>`,
		want: "verify b@x",
	}, {
		name: "Outlook for Mac reference container",
		html: `<div>verify b@x</div><div id="mail-editor-reference-message-container"><div>From: Visa</div></div>`,
		want: "verify b@x",
	}, {
		name: "Thunderbird cite prefix and blockquote",
		html: `<p>verify b@x<br></p><div class="moz-cite-prefix">On 3/3/26 10:00, Visa wrote:<br></div>` +
			`<blockquote type="cite" cite="mid:x@y">add member old@x</blockquote><div class="moz-signature">-- <br>Jana</div>`,
		want: "verify b@x",
	}, {
		name: "Apple Mail cite blockquote keeps the attribution above it",
		html: `verify b@x<div><br><div>On 2 Mar 2026, at 18:30, Visa &lt;v@x&gt; wrote:</div><br class="Apple-interchange-newline">` +
			`<blockquote type="cite"><div>add member old@x</div></blockquote></div>`,
		want: "verify b@x\n\nOn 2 Mar 2026, at 18:30, Visa <v@x> wrote:",
	}, {
		name: "Yahoo quoted",
		html: `<div class="ydp1"><div>verify b@x</div></div><div id="yahoo_quoted_8123" class="yahoo_quoted"><div>On Monday, Visa wrote:</div></div>`,
		want: "verify b@x",
	}, {
		name: "an indenting blockquote is not a quote",
		html: `<div>verify a@x</div><blockquote style="margin: 0 0 0 40px; border: none; padding: 0px;"><div>verify b@x</div></blockquote><div>verify c@x</div>`,
		want: "verify a@x\nverify b@x\nverify c@x",
	}, {
		name: "script, style, head and title dropped; entities decoded",
		html: `<html><head><title>add member title@x</title><style>p{color:red}</style></head><body>` +
			`<script>document.write("add member js@x")</script><p>add member a@x name=&#8220;Al &amp; Bo&#8221; &lt;ok&gt; &#x2019;</p></body></html>`,
		want: `add member a@x name="Al & Bo" <ok> '`,
	}, {
		name: "unclosed head ends at body",
		html: `<head><meta charset="utf-8"><body><p>verify b@x</p>`,
		want: "verify b@x",
	}, {
		name: "whitespace collapses within a line",
		html: "<p>  add\n   member\t a@x   </p>\n\n<p>verify\r\n b@x</p>",
		want: "add member a@x\nverify b@x",
	}, {
		name: "inline elements do not break lines",
		html: `<p><span>add </span><b>member</b> <a href="mailto:a@x">a@x</a><o:p></o:p></p>`,
		want: "add member a@x",
	}, {
		name: "lists, headings and table rows make lines",
		html: `<h1>Members</h1><ul><li>add member a@x</li><li>add member b@x</li></ul><table><tr><td>verify</td><td>c@x</td></tr><tr><td>end</td></tr></table>`,
		want: "Members\nadd member a@x\nadd member b@x\nverify c@x\nend",
	}, {
		name: "pre keeps its lines",
		html: "<pre>add member a@x\nverify   b@x</pre>after",
		want: "add member a@x\nverify   b@x\nafter",
	}, {
		name: "br makes blank lines",
		html: "verify a@x<br><br>verify b@x",
		want: "verify a@x\n\nverify b@x",
	}, {
		name: "not HTML at all",
		html: "verify b@x",
		want: "verify b@x",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := HTMLToText(strings.NewReader(tc.html))
			if err != nil {
				t.Fatalf("HTMLToText: %v", err)
			}
			if got != tc.want {
				t.Errorf("HTMLToText =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
