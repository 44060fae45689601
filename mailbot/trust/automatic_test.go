package trust

import "testing"

func TestAutomatic(t *testing.T) {
	const bot = "visa@coworkingvisa.test"
	tests := []struct {
		name   string
		raw    string
		reason string // "" for a message a person wrote
	}{
		// People.
		{"plain", "Return-Path: <mgr@indyhall.test>\n" + fromMgr + rest, ""},
		{"gmail", gmail, ""},
		{"auto-submitted no", "Auto-Submitted: no\n" + fromMgr + rest, ""},
		{"auto-submitted No with comment", "Auto-Submitted: No (a person wrote this)\n" + fromMgr + rest, ""},
		{"precedence first-class", "Precedence: first-class\n" + fromMgr + rest, ""},
		{"outlook suppressing receipts only", "X-Auto-Response-Suppress: DR, RN, NRN\n" + fromMgr + rest, ""},
		{"x-mailer and feedback-id", "X-Mailer: Apple Mail (2.3826.400.131.1.6)\nFeedback-ID: 123:abc:gmail\n" + fromMgr + rest, ""},
		{"multipart/mixed", fromMgr + rest + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"000000000000b2a1\"\n", ""},
		{"x-loop of someone else", "X-Loop: helpdesk@indyhall.test\n" + fromMgr + rest, ""},
		{"postmaster in display name", `From: "Postmaster General" <pg@indyhall.test>` + "\n" + rest, ""},

		// RFC 3834 and friends.
		{"gmail vacation", "Auto-Submitted: auto-replied\n" + fromMgr + rest, "Auto-Submitted: auto-replied"},
		{"auto-submitted with parameters", "Auto-Submitted: auto-replied; owner-email=\"mgr@indyhall.test\"\n" + fromMgr + rest, "Auto-Submitted: auto-replied"},
		{"auto-submitted case and comment", "Auto-Submitted: Auto-Generated (vacation)\n" + fromMgr + rest, "Auto-Submitted: auto-generated"},
		{"auto-submitted empty", "Auto-Submitted:\n" + fromMgr + rest, "Auto-Submitted: (empty)"},
		{"second auto-submitted", "Auto-Submitted: no\nAuto-Submitted: auto-notified\n" + fromMgr + rest, "Auto-Submitted: auto-notified"},
		{"precedence bulk", "Precedence: bulk\n" + fromMgr + rest, "Precedence: bulk"},
		{"precedence list", "Precedence: List\n" + fromMgr + rest, "Precedence: list"},
		{"precedence junk", "Precedence: junk\n" + fromMgr + rest, "Precedence: junk"},
		{"precedence auto_reply", "Precedence: auto_reply\n" + fromMgr + rest, "Precedence: auto_reply"},
		{"mailman", "List-Id: Coworking managers <managers.lists.example.org>\nList-Unsubscribe: <https://lists.example.org/unsub>,\n <mailto:managers-leave@lists.example.org>\nList-Post: <mailto:managers@lists.example.org>\n" + fromMgr + rest, "List-Id present"},
		{"list-unsubscribe", "List-Unsubscribe: <mailto:unsub@news.example.org>\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n" + fromMgr + rest, "List-Unsubscribe present"},
		{"list-post", "List-Post: NO (posting not allowed on this list)\n" + fromMgr + rest, "List-Post present"},
		{"x-autoreply", "X-Autoreply: yes\n" + fromMgr + rest, "X-Autoreply present"},
		{"x-autorespond", "X-Autorespond: Thank you for your message\n" + fromMgr + rest, "X-Autorespond present"},
		{"exchange out of office", "Thread-Topic: Automatic reply: add member\nAuto-Submitted: auto-generated\nX-Auto-Response-Suppress: All\nX-MS-Exchange-Inbox-Rules-Loop: mgr@indyhall.test\n" + fromMgr + rest, "Auto-Submitted: auto-generated"},
		{"x-auto-response-suppress all", "X-Auto-Response-Suppress: All\n" + fromMgr + rest, "X-Auto-Response-Suppress: All"},
		{"x-auto-response-suppress oof", "X-Auto-Response-Suppress: DR, OOF, AutoReply\n" + fromMgr + rest, "X-Auto-Response-Suppress: OOF"},
		{"x-auto-response-suppress autoreply", "X-Auto-Response-Suppress: autoreply\n" + fromMgr + rest, "X-Auto-Response-Suppress: autoreply"},

		// Bounces.
		{"null sender", "Return-Path: <>\n" + fromMgr + rest, "null envelope sender"},
		{"null sender with space", "Return-Path: < >\n" + fromMgr + rest, "null envelope sender"},
		{"postfix bounce", `Return-Path: <>
Delivered-To: visa@coworkingvisa.test
Received: by mx.example.org (Postfix)
	id 4YmX1q2pZtz9sQ; Mon,  3 Feb 2025 15:12:36 +0100 (CET)
Date: Mon,  3 Feb 2025 15:12:36 +0100 (CET)
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: visa@coworkingvisa.test
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4YmX1q2pZtz9sQ.1738591956/mx.example.org"
`, "Auto-Submitted: auto-replied"},
		{"bare dsn", "Return-Path: <bounces@esp.test>\nFrom: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n" + rest, "From: mailer-daemon@googlemail.com"},
		{"mailer-daemon return-path", "Return-Path: <MAILER-DAEMON@mx.example.org>\n" + fromMgr + rest, "Return-Path: MAILER-DAEMON@mx.example.org"},
		{"postmaster from", "From: Postmaster <POSTMASTER@indyhall.test>\n" + rest, "From: postmaster@indyhall.test"},
		{"mailer-daemon without domain", "From: MAILER-DAEMON\n" + rest, "From: MAILER-DAEMON"},
		{"multipart/report", fromMgr + rest + "Content-Type: Multipart/Report; report-type=disposition-notification; boundary=x\n", "Content-Type: multipart/report"},
		{"multipart/report unparsable params", fromMgr + rest + "Content-Type: multipart/report; boundary\n", "Content-Type: multipart/report"},

		// The bot itself.
		{"x-loop", "X-Loop: visa@coworkingvisa.test\n" + fromMgr + rest, "X-Loop: the bot's own address"},
		{"x-loop case", "X-Loop: VISA@CoworkingVisa.test\n" + fromMgr + rest, "X-Loop: the bot's own address"},
		{"from the bot", "From: Coworking Visa <Visa@coworkingvisa.test>\n" + rest, "From is the bot's own address"},
		{"from the bot among others", "From: mgr@indyhall.test, visa@coworkingvisa.test\n" + rest, "From is the bot's own address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, ok := Automatic(parseHeader(t, tt.raw), bot)
			if ok != (tt.reason != "") || reason != tt.reason {
				t.Errorf("Automatic = %q, %v; want %q", reason, ok, tt.reason)
			}
		})
	}
}

// TestAutomaticNoBot: without a bot address, only the other rules apply.
func TestAutomaticNoBot(t *testing.T) {
	if reason, ok := Automatic(parseHeader(t, "X-Loop: \nFrom: visa@coworkingvisa.test\n"), ""); ok {
		t.Errorf("Automatic = %q; want not automatic", reason)
	}
}
