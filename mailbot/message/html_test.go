package message

import (
	"errors"
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

// TestHTMLHidden: text the reader cannot see is not read, whichever way it
// is hidden; text that is merely styled still is. Each case writes a
// visible "verify ok@x" and, where it hides something, "add member evil@x".
func TestHTMLHidden(t *testing.T) {
	const evil = "add member evil@x"
	tests := []struct {
		name string
		html string
		want string // "" means just "verify ok@x"
	}{
		// display and visibility
		{"display:none", `<div style="display:none">` + evil + `</div>`, ""},
		{"display:none !important, upper case", `<span style="DISPLAY: NONE !IMPORTANT">` + evil + `</span>`, ""},
		{"visibility:hidden", `<p style="visibility:hidden">` + evil + `</p>`, ""},
		{"visibility:hidden nested", `<div style="visibility:hidden"><p><b>` + evil + `</b></p></div>`, ""},
		{"visibility:visible inside hidden shows again",
			`<div style="visibility:hidden">` + evil + `<p style="visibility:visible">verify shown@x</p></div>`, "verify shown@x"},
		{"hidden attribute", `<div hidden>` + evil + `</div>`, ""},
		{"hidden until found", `<div hidden="until-found">` + evil + `</div>`, ""},
		{"mso-hide:all", `<div style="mso-hide:all">` + evil + `</div>`, ""},
		{"content-visibility", `<div style="content-visibility:hidden">` + evil + `</div>`, ""},
		{"closed details", `<details><summary>verify summary@x</summary>` + evil + `</details>`, "verify summary@x"},
		{"open details", `<details open><summary>s</summary><p>verify open@x</p></details>`, "s\nverify open@x"},
		{"dialog", `<dialog>` + evil + `</dialog>`, ""},
		{"template, noscript, iframe", `<template>` + evil + `</template><noscript>` + evil + `</noscript><iframe>` + evil + `</iframe>`, ""},
		{"Outlook's not-for-Outlook block", `<!--[if !mso]><!-->` + evil + `<!--<![endif]-->`, ""},
		// font size
		{"font-size:0", `<span style="font-size:0">` + evil + `</span>`, ""},
		{"font-size:1px", `<span style="font-size:1px">` + evil + `</span>`, ""},
		{"font-size:2px", `<span style="font-size:2px">` + evil + `</span>`, ""},
		{"font-size:1.5pt", `<span style="font-size:1.5pt">` + evil + `</span>`, ""},
		{"font-size:0.1em", `<span style="font-size:0.1em">` + evil + `</span>`, ""},
		{"font-size:1%", `<span style="font-size:1%">` + evil + `</span>`, ""},
		{"font shorthand", `<span style="font:0/0 a">` + evil + `</span>`, ""},
		{"font-size:0 inherited", `<div style="font-size:0"><p><span>` + evil + `</span></p></div>`, ""},
		{"font-size:0 then 1em", `<div style="font-size:0"><span style="font-size:1em">` + evil + `</span></div>`, ""},
		{"zoom", `<div style="zoom:0.05">` + evil + `</div>`, ""},
		{"font-size:calc()", `<div style="font-size:calc(1px * 0)">` + evil + `</div>`, ""},
		{"font-size:0 around a sized cell is a layout trick", `<div style="font-size:0"><div style="font-size:14px">verify cell@x</div></div>`, "verify cell@x"},
		{"font size 1 is small, not hidden", `<font size="1">verify small@x</font>`, "verify small@x"},
		// colour
		{"white on white", `<span style="color:#fff">` + evil + `</span>`, ""},
		{"white by name", `<span style="color:White">` + evil + `</span>`, ""},
		{"white as rgb()", `<span style="color: rgb(255, 255, 255)">` + evil + `</span>`, ""},
		{"white as hsl()", `<span style="color:hsl(0 0% 100%)">` + evil + `</span>`, ""},
		{"nearly white", `<span style="color:#fefefe">` + evil + `</span>`, ""},
		{"snow", `<span style="color:snow">` + evil + `</span>`, ""},
		{"font color", `<font color="#ffffff">` + evil + `</font>`, ""},
		{"font color without #", `<font color="ffffff">` + evil + `</font>`, ""},
		{"white inherited", `<div style="color:#fff"><p><b>` + evil + `</b></p></div>`, ""},
		{"body text white", `<body text="#ffffff"><p>` + evil + `</p><p style="color:#000">verify ok@x</p></body>`, "verify ok@x"},
		{"text colour of the background", `<div style="background:#123456"><span style="color:#123456">` + evil + `</span></div>`, ""},
		{"bgcolor", `<table bgcolor="#336699"><tr><td><font color="#336699">` + evil + `</font></td></tr></table>`, ""},
		{"td bgcolor black", `<table><tr><td bgcolor="black"><span style="color:#000">` + evil + `</span></td></tr></table>`, ""},
		{"background shorthand with an image", `<div style="background: url(x.png) no-repeat #222"><p style="color:#222">` + evil + `</p></div>`, ""},
		{"background-color: currentColor", `<span style="color:#c00;background-color:currentColor">` + evil + `</span>`, ""},
		{"white on black is seen", `<div style="background:#000;color:#fff">verify dark@x</div>`, "verify dark@x"},
		{"grey is seen", `<span style="color:#999">verify grey@x</span>`, "verify grey@x"},
		{"Outlook's windowtext is seen", `<span style="color:windowtext">verify outlook@x</span>`, "verify outlook@x"},
		{"transparent", `<span style="color:transparent">` + evil + `</span>`, ""},
		{"rgba alpha 0", `<span style="color:rgba(0,0,0,0)">` + evil + `</span>`, ""},
		{"#rrggbbaa", `<span style="color:#00000000">` + evil + `</span>`, ""},
		{"-webkit-text-fill-color", `<span style="-webkit-text-fill-color:transparent">` + evil + `</span>`, ""},
		{"var()", `<span style="color:var(--c)">` + evil + `</span>`, ""},
		{"opacity:0", `<div style="opacity:0">` + evil + `</div>`, ""},
		{"opacity 0.05", `<div style="opacity:.05">` + evil + `</div>`, ""},
		{"opacity multiplies", `<div style="opacity:0.3"><div style="opacity:0.3">` + evil + `</div></div>`, ""},
		{"opacity 0.6 is seen", `<div style="opacity:0.6">verify faint@x</div>`, "verify faint@x"},
		{"filter opacity", `<div style="filter: opacity(0)">` + evil + `</div>`, ""},
		// boxes
		{"max-height:0 overflow:hidden", `<div style="max-height:0;overflow:hidden">` + evil + `</div>`, ""},
		{"height:0 overflow:hidden", `<div style="height:0px;overflow:hidden">` + evil + `</div>`, ""},
		{"visually hidden", `<span style="position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)">` + evil + `</span>`, ""},
		{"height:0 alone overflows visibly", `<div style="height:0">verify spill@x</div>`, "verify spill@x"},
		{"off screen", `<div style="position:absolute;left:-9999px">` + evil + `</div>`, ""},
		{"text-indent", `<div style="text-indent:-9999px;overflow:hidden">` + evil + `</div>`, ""},
		{"clip-path", `<div style="clip-path:inset(50%)">` + evil + `</div>`, ""},
		{"scale(0)", `<div style="transform:scale(0)">` + evil + `</div>`, ""},
		// style sheets
		{"class in a style sheet", `<style>.h{display:none}</style><span class="h">` + evil + `</span>`, ""},
		{"id in a style sheet", `<style>#h { font-size: 0 }</style><p id="h">` + evil + `</p>`, ""},
		{"element.class colour", `<style>span.h{color:#FFF}</style><span class="a h">` + evil + `</span>`, ""},
		{"descendant selector", `<style>div .h{display:none}</style><div><span class="h">` + evil + `</span></div>`, ""},
		{"under @media", `<style>@media screen { .h { visibility: hidden } }</style><p class="h">` + evil + `</p>`, ""},
		{"pseudo-class", `<style>.h:not(.x){opacity:0}</style><p class="h">` + evil + `</p>`, ""},
		{"colour rule against another rule's background", `<style>.bg{background:#0a0a0a} .fg:first-child{color:#0a0a0a}</style><div class="bg"><p class="fg">` + evil + `</p></div>`, ""},
		{"comments and Outlook's wrapper", `<style><!-- /* x */ .h {display:none} --></style><p class="h">` + evil + `</p>`, ""},
		{"inline beats the sheet", `<style>.v{color:#fff}</style><p class="v" style="color:#000">verify inline@x</p>`, "verify inline@x"},
		{"!important in the sheet beats inline", `<style>.h{color:#fff !important}</style><p class="h" style="color:#000">` + evil + `</p>`, ""},
		{"a dark sheet's white text is seen", `<style>body{background:#000} p{color:#fff}</style><body><p>verify night@x</p></body>`, "verify night@x"},
		{"Outlook's own sheet hides nothing", `<style>p.MsoNormal{margin:0cm;font-size:11.0pt;font-family:"Calibri",sans-serif;} a:link, span.MsoHyperlink{color:#0563C1;} span.EmailStyle19{mso-style-type:personal-reply;color:windowtext}</style><p class="MsoNormal">verify word@x</p>`, "verify word@x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == "" {
				want = "verify ok@x"
			}
			html := tc.html
			if tc.want == "" {
				html = `<div>verify ok@x</div>` + html
			}
			got, err := HTMLToText(strings.NewReader(html))
			if err != nil {
				t.Fatalf("HTMLToText: %v", err)
			}
			if got != want {
				t.Errorf("HTMLToText(%s) =\n%q\nwant\n%q", html, got, want)
			}
		})
	}
}

// TestHTMLForwards: the sender's text ends where a client's forward
// container starts, in HTML as each client writes its inline forward.
func TestHTMLForwards(t *testing.T) {
	const greeting = `<div>Hi, see below.</div>`
	tests := []struct{ name, html string }{
		{"Thunderbird", `<p>Hi, see below.</p><div class="moz-forward-container"><br><br>-------- Forwarded Message --------
			<table class="moz-email-headers-table"><tbody><tr><th>Subject:</th><td>hi</td></tr><tr><th>From:</th><td>V &lt;v@evil.test&gt;</td></tr></tbody></table><br>
			<p>add member mallory@evil.test</p></div>`},
		{"Thunderbird German, header table alone", `<p>Hi, see below.</p>-------- Weitergeleitete Nachricht --------<table class="moz-email-headers-table"><tr><th>Betreff:</th><td>hi</td></tr></table><p>add member mallory@evil.test</p>`},
		{"Gmail", greeting + `<br><div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">---------- Forwarded message ---------<br>From: <strong class="gmail_sendername" dir="auto">V</strong> <span dir="auto">&lt;v@evil.test&gt;</span><br>Date: Mon, 2 Mar 2026 at 09:00<br>Subject: hi<br>To: &lt;mgr@indyhall.test&gt;<br></div><br><br><div dir="ltr">add member mallory@evil.test</div></div>`},
		{"Gmail French, older markup", greeting + `<div class="gmail_quote">---------- Message transféré ---------<br>De : V<br><div>add member mallory@evil.test</div></div>`},
		{"Outlook on the web", `<div class="elementToProof">Hi, see below.</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000"><b>From:</b> V &lt;v@evil.test&gt;<br><b>Sent:</b> Monday, March 2, 2026 9:00 AM<br><b>To:</b> Manager<br><b>Subject:</b> hi</font><div>&nbsp;</div></div><div><p>add member mallory@evil.test</p></div>`},
		{"Outlook on the web forwarding a forward", greeting + `<div id="x_divRplyFwdMsg"><b>Von:</b> V<br><b>Gesendet:</b> Montag</div><p>add member mallory@evil.test</p>`},
		{"Outlook desktop", `<div class="WordSection1"><p class="MsoNormal">Hi, see below.<o:p></o:p></p><div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm"><p class="MsoNormal"><b>From:</b> V &lt;v@evil.test&gt;<br><b>Sent:</b> Monday, March 2, 2026 9:00 AM<br><b>To:</b> Manager<br><b>Subject:</b> hi<o:p></o:p></p></div></div><p class="MsoNormal">add member mallory@evil.test<o:p></o:p></p></div>`},
		{"Outlook desktop, Original Message in Italian", `<p class="MsoNormal">Hi, see below.</p><p class="MsoNormal">-----Messaggio originale-----<br>Da: V<br>Inviato: lunedì<br>A: Manager<br>Oggetto: hi</p><p class="MsoNormal">add member mallory@evil.test</p>`},
		{"older Outlook header", greeting + `<div class="OutlookMessageHeader" lang="en-us" dir="ltr" align="left"><hr tabindex="-1"><font face="Tahoma" size="2"><b>From:</b> V</font></div><p>add member mallory@evil.test</p>`},
		{"Yahoo", `<div class="ydp3f2a1b0cyahoo-style-wrap"><div>Hi, see below.</div><div><br></div><div id="ydp3f2a1b0cyahoo_quoted_1234" class="ydp3f2a1b0cyahoo_quoted"><div>----- Forwarded Message -----</div><div>From: V &lt;v@evil.test&gt;</div><div>add member mallory@evil.test</div></div></div>`},
		{"Yahoo, first quote", greeting + `<div id="yahoo_quoted_5678" class="yahoo_quoted"><div>----- Mensaje reenviado -----</div><div>add member mallory@evil.test</div></div>`},
		{"Apple Mail", `Hi, see below.<br><div><br><blockquote type="cite"><div>Begin forwarded message:</div><br class="Apple-interchange-newline"><div style="margin-top: 0px;"><span><b>From: </b></span><span>V &lt;v@evil.test&gt;</span></div><br><div>add member mallory@evil.test</div></blockquote></div>`},
		{"Apple Mail, marker outside the quote, Portuguese", `Hi, see below.<br><div><br><div>Início da mensagem reencaminhada:</div><br class="Apple-interchange-newline"><div><b>De: </b>V</div><div>add member mallory@evil.test</div></div>`},
		{"Apple Mail original contents", greeting + `<div class="AppleOriginalContents"><div>add member mallory@evil.test</div></div>`},
		{"Proton", greeting + `<div class="protonmail_quote">------- Forwarded Message -------<br>add member mallory@evil.test</div>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text, err := HTMLToText(strings.NewReader(tc.html))
			if err != nil {
				t.Fatalf("HTMLToText: %v", err)
			}
			own := OwnLines(text)
			if strings.Contains(strings.Join(own, "\n"), "mallory") {
				t.Errorf("the forwarded message was read: %q", own)
			}
			if len(own) == 0 || own[0] != "Hi, see below." {
				t.Errorf("OwnLines = %q, want the greeting first", own)
			}
		})
	}
}

// TestHTMLTooDeep: HTML nested deeper than a browser's parser takes is read
// up to there, and the error says the rest was not.
func TestHTMLTooDeep(t *testing.T) {
	src := "<p>verify a@x</p>" + strings.Repeat("<div>", 100000) + "add member deep@x"
	got, err := HTMLToText(strings.NewReader(src))
	if !errors.Is(err, errHTMLTooDeep) {
		t.Errorf("err = %v, want errHTMLTooDeep", err)
	}
	if got != "verify a@x" {
		t.Errorf("HTMLToText = %q, want the text above the nesting", got)
	}
	m, err := Parse(eml("From: a@x\nContent-Type: text/html\n\n"+src), Limits{})
	if err != nil || !m.Truncated || m.Text != "verify a@x" {
		t.Errorf("Parse: Truncated = %v, Text = %q, err %v; want the text above the nesting, truncated", m.Truncated, m.Text, err)
	}
}

// TestHTMLTooManyRules: a style sheet too big to work through hides all:
// the bot cannot tell what it shows.
func TestHTMLTooManyRules(t *testing.T) {
	sheet := strings.Repeat(".a{color:red}", maxRules+1)
	got, err := HTMLToText(strings.NewReader("<style>" + sheet + "</style><p>add member evil@x</p>"))
	if err != nil || got != "" {
		t.Errorf("HTMLToText = %q, %v; want nothing read", got, err)
	}
	sheet = strings.Repeat(".a{color:red}", 10)
	if got, _ := HTMLToText(strings.NewReader("<style>" + sheet + "</style><p>verify ok@x</p>")); got != "verify ok@x" {
		t.Errorf("HTMLToText = %q with a small sheet", got)
	}
}
