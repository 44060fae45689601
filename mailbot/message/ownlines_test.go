package message

import (
	"reflect"
	"strings"
	"testing"
)

func TestOwnLines(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{{
		name: "signature separator",
		text: "verify a@x\n-- \nJana\nadd member sig@x",
		want: []string{"verify a@x"},
	}, {
		name: "signature separator without its space",
		text: "verify a@x\n--\nJana",
		want: []string{"verify a@x"},
	}, {
		name: "dashes that are not a separator",
		text: "verify a@x\n---\n--- notes\nverify b@x",
		want: []string{"verify a@x", "---", "--- notes", "verify b@x"},
	}, {
		name: "end and thanks are the parser's business",
		text: "verify a@x\nend\nthanks\nverify b@x",
		want: []string{"verify a@x", "end", "thanks", "verify b@x"},
	}, {
		name: "trimmed, CRLF, blank lines kept",
		text: "  verify a@x  \r\n\r\n\tverify b@x\r\n",
		want: []string{"verify a@x", "", "verify b@x", ""},
	}, {
		name: "quoted lines, indented too",
		text: "verify a@x\n  > add member old@x\nverify b@x",
		want: []string{"verify a@x"},
	}, {
		name: "English attribution",
		text: "verify a@x\n\nOn Tue, 3 Mar 2026 at 10:00, Visa <v@x> wrote:\n\n> add member old@x",
		want: []string{"verify a@x", ""},
	}, {
		name: "attribution wrapped over two lines",
		text: "verify a@x\nOn Tue, 3 Mar 2026 at 10:00, Coworking Visa <\nvisa@example.org> wrote:\n> add member old@x",
		want: []string{"verify a@x"},
	}, {
		name: "French attribution",
		text: "verify a@x\nLe mar. 3 mars 2026 à 10:00, Visa <v@x> a écrit :\n> old",
		want: []string{"verify a@x"},
	}, {
		name: "German attribution",
		text: "verify a@x\nAm Di., 3. März 2026 um 10:00 Uhr schrieb Visa <v@x>:\n> old",
		want: []string{"verify a@x"},
	}, {
		name: "Spanish attribution",
		text: "verify a@x\nEl mar, 3 mar 2026 a las 10:00, Visa (<v@x>) escribió:\n> old",
		want: []string{"verify a@x"},
	}, {
		name: "Dutch attribution",
		text: "verify a@x\nOp di 3 mrt 2026 om 10:00 schreef Visa <v@x>:\n\n> old",
		want: []string{"verify a@x"},
	}, {
		name: "attribution left at the end by an HTML quote",
		text: "verify a@x\n\nOn 2 Mar 2026, at 18:30, Visa <v@x> wrote:",
		want: []string{"verify a@x", ""},
	}, {
		name: "a line like an attribution that is not one stays",
		text: "On Monday please:\nverify a@x",
		want: []string{"On Monday please:", "verify a@x"},
	}, {
		name: "Outlook reply header in English",
		text: "verify a@x\n\nFrom: Visa <v@x>\nSent: Monday, March 2, 2026 6:30 PM\nTo: Peter\nSubject: Re: Members\n\nOK: done",
		want: []string{"verify a@x", ""},
	}, {
		name: "Outlook reply header in French",
		text: "verify a@x\nDe : Visa <v@x>\nEnvoyé : lundi 2 mars 2026 18:30\nÀ : Claire\nObjet : RE: Membres\nOK",
		want: []string{"verify a@x"},
	}, {
		name: "Outlook header as Gmail renders its bold names",
		text: "verify a@x\n*From:* Visa <v@x>\n*Sent:* Monday\n*To:* Peter\n",
		want: []string{"verify a@x"},
	}, {
		name: "a From: line alone is not a reply header",
		text: "From: the front desk\nverify a@x\nTo: do",
		want: []string{"From: the front desk", "verify a@x", "To: do"},
	}, {
		name: "Outlook underscore separator",
		text: "verify a@x\n________________________________\nFrom: Visa",
		want: []string{"verify a@x"},
	}, {
		name: "Original Message",
		text: "verify a@x\n-----Original Message-----\nadd member old@x",
		want: []string{"verify a@x"},
	}, {
		name: "German Original Message",
		text: "verify a@x\n-----Ursprüngliche Nachricht-----\nadd member old@x",
		want: []string{"verify a@x"},
	}, {
		name: "Gmail forward",
		text: "please check\n\n---------- Forwarded message ---------\nFrom: X\nverify old@x",
		want: []string{"please check", ""},
	}, {
		name: "Apple Mail forward",
		text: "please check\nBegin forwarded message:\n\nverify old@x",
		want: []string{"please check"},
	}, {
		name: "inline PGP is not a forward",
		text: "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nverify a@x",
		want: []string{"-----BEGIN PGP SIGNED MESSAGE-----", "Hash: SHA256", "", "verify a@x"},
	}, {
		name: "empty",
		text: "",
		want: []string{""},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := OwnLines(tc.text); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("OwnLines(%q) =\n%q\nwant\n%q", tc.text, got, tc.want)
			}
		})
	}
}

// TestOwnLinesForwards: nothing below a forward marker is the sender's, in
// any of the clients' languages. Each body is shaped as the client writes
// its inline forward in plain text; the forwarded part always holds a
// command that must not be read.
func TestOwnLinesForwards(t *testing.T) {
	const fwd = "add member mallory@evil.test\n"
	tests := []struct{ name, marker, header string }{
		{"Gmail", "---------- Forwarded message ---------",
			"From: Visitor <v@evil.test>\nDate: Mon, 2 Mar 2026 at 09:00\nSubject: hi\nTo: <mgr@indyhall.test>\n"},
		{"Gmail German", "---------- Weitergeleitete Nachricht ---------",
			"Von: Visitor <v@evil.test>\nDate: Mo., 2. März 2026 um 09:00 Uhr\nSubject: hi\nTo: <mgr@indyhall.test>\n"},
		{"Gmail French", "---------- Message transféré ---------",
			"De : Visitor <v@evil.test>\nDate: lun. 2 mars 2026 à 09:00\nSubject: hi\nTo: <mgr@indyhall.test>\n"},
		{"Gmail Spanish", "---------- Mensaje reenviado ---------",
			"De: Visitor <v@evil.test>\nDate: lun, 2 mar 2026 a las 09:00\nSubject: hi\nTo: <mgr@indyhall.test>\n"},
		{"Gmail Dutch", "---------- Doorgestuurd bericht ---------",
			"Van: Visitor <v@evil.test>\nDate: ma 2 mrt 2026 om 09:00\nSubject: hi\nTo: <mgr@indyhall.test>\n"},
		{"Gmail Italian", "---------- Messaggio inoltrato ---------",
			"Da: Visitor <v@evil.test>\nDate: lun 2 mar 2026 alle ore 09:00\nSubject: hi\nTo: <mgr@indyhall.test>\n"},
		{"Gmail Portuguese", "---------- Mensagem encaminhada ---------",
			"De: Visitor <v@evil.test>\nDate: seg., 2 de mar. de 2026 às 09:00\nSubject: hi\nTo: <mgr@indyhall.test>\n"},
		{"Outlook", "-----Original Message-----",
			"From: Visitor <v@evil.test>\nSent: Monday, March 2, 2026 9:00 AM\nTo: Manager\nSubject: hi\n"},
		{"Outlook German", "-----Ursprüngliche Nachricht-----",
			"Von: Visitor <v@evil.test>\nGesendet: Montag, 2. März 2026 09:00\nAn: Manager\nBetreff: hi\n"},
		{"Outlook French", "-----Message d'origine-----",
			"De : Visitor <v@evil.test>\nEnvoyé : lundi 2 mars 2026 09:00\nÀ : Manager\nObjet : hi\n"},
		{"Outlook Spanish", "-----Mensaje original-----",
			"De: Visitor <v@evil.test>\nEnviado el: lunes, 2 de marzo de 2026 9:00\nPara: Manager\nAsunto: hi\n"},
		{"Outlook Dutch", "-----Oorspronkelijk bericht-----",
			"Van: Visitor <v@evil.test>\nVerzonden: maandag 2 maart 2026 09:00\nAan: Manager\nOnderwerp: hi\n"},
		{"Outlook Italian", "-----Messaggio originale-----",
			"Da: Visitor <v@evil.test>\nInviato: lunedì 2 marzo 2026 09:00\nA: Manager\nOggetto: hi\n"},
		{"Outlook Portuguese", "-----Mensagem original-----",
			"De: Visitor <v@evil.test>\nEnviada em: segunda-feira, 2 de março de 2026 09:00\nPara: Manager\nAssunto: hi\n"},
		{"Outlook without a marker", "________________________________",
			"From: Visitor <v@evil.test>\nSent: Monday, March 2, 2026 9:00 AM\nTo: Manager\nSubject: hi\n"},
		{"Outlook header alone, Portuguese", "",
			"De: Visitor <v@evil.test>\nEnviado: segunda-feira, 2 de março de 2026 09:00\nPara: Manager\nAssunto: hi\n"},
		{"Apple Mail", "Begin forwarded message:",
			"\nFrom: Visitor <v@evil.test>\nSubject: hi\nDate: 2 March 2026 at 09:00:00 CET\nTo: mgr@indyhall.test\n"},
		{"Apple Mail German", "Anfang der weitergeleiteten Nachricht:",
			"\nVon: Visitor <v@evil.test>\nBetreff: hi\nDatum: 2. März 2026 um 09:00:00 MEZ\nAn: mgr@indyhall.test\n"},
		{"Apple Mail German, newer", "Anfang der weitergeleiteten E-Mail:", "\n"},
		{"Apple Mail French", "Début du message réexpédié :",
			"\nDe: Visitor <v@evil.test>\nObjet: hi\nDate: 2 mars 2026 à 09:00:00 UTC+1\nÀ: mgr@indyhall.test\n"},
		{"Apple Mail Spanish", "Inicio del mensaje reenviado:", "\n"},
		{"Apple Mail Dutch", "Begin doorgestuurd bericht:", "\n"},
		{"Apple Mail Italian", "Inizio messaggio inoltrato:", "\n"},
		{"Apple Mail Portuguese", "Início da mensagem reencaminhada:", "\n"},
		{"Apple Mail Brazilian", "Início da mensagem encaminhada:", "\n"},
		{"Thunderbird", "-------- Forwarded Message --------",
			"Subject: \thi\nDate: \tMon, 2 Mar 2026 09:00:00 +0100\nFrom: \tVisitor <v@evil.test>\nTo: \tmgr@indyhall.test\n\n"},
		{"Thunderbird German", "-------- Weitergeleitete Nachricht --------",
			"Betreff: \thi\nDatum: \tMon, 2 Mar 2026 09:00:00 +0100\nVon: \tVisitor <v@evil.test>\nAn: \tmgr@indyhall.test\n\n"},
		{"Thunderbird French", "-------- Message transféré --------",
			"Sujet : \thi\nDate : \tMon, 2 Mar 2026 09:00:00 +0100\nDe : \tVisitor <v@evil.test>\nPour : \tmgr@indyhall.test\n\n"},
		{"Thunderbird Spanish", "-------- Mensaje reenviado --------", "Asunto: \thi\n\n"},
		{"Thunderbird Dutch", "-------- Doorgestuurd bericht --------", "Onderwerp: \thi\n\n"},
		{"Thunderbird Italian", "-------- Messaggio Inoltrato --------", "Oggetto: \thi\n\n"},
		{"Thunderbird Portuguese", "-------- Mensagem reencaminhada --------", "Assunto: \thi\n\n"},
		{"Thunderbird Brazilian", "-------- Mensagem encaminhada --------", "Assunto: \thi\n\n"},
		{"Thunderbird German original", "-------- Original-Nachricht --------", "\n"},
		{"Yahoo", "----- Forwarded Message -----",
			"From: Visitor <v@evil.test>\nTo: mgr@indyhall.test\nSent: Monday, March 2, 2026, 09:00:00 AM GMT+1\nSubject: hi\n\n"},
		{"Yahoo French", "----- Message transféré -----", "\n"},
		{"Yahoo Spanish", "----- Mensaje reenviado -----", "\n"},
		{"Yahoo Italian", "----- Messaggio inoltrato -----", "\n"},
		{"Zoho", "============ Forwarded message ============", "\n"},
		{"Proton", "------- Forwarded Message -------", "\n"},
		{"K-9 Mail and Samsung", "-------- Original message --------", "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := "Hi, see below.\n\n" + tc.marker + "\n" + tc.header + fwd
			got := OwnLines(text)
			if strings.Contains(strings.Join(got, "\n"), "mallory") {
				t.Errorf("OwnLines read the forwarded message: %q", got)
			}
			if len(got) == 0 || got[0] != "Hi, see below." {
				t.Errorf("OwnLines = %q, want the greeting first", got)
			}
			if below := BelowQuote(text + "\nOn Mon, 2 Mar 2026, Visa wrote:\n> x\n\nadd member below@evil.test\n"); len(below) != 0 {
				t.Errorf("BelowQuote read past the forward marker: %q", below)
			}
		})
	}
}

func TestBelowQuote(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"bottom-posted confirm", "On Mon, 30 Nov 2026 at 09:12, Visa <visa@x.test> wrote:\n> OK: would replace\n> confirm ABCD\n\nconfirm K7QX-4M2P\n\n-- \nAlex\n",
			[]string{"confirm K7QX-4M2P", ""}},
		{"Gmail's attribution wrapped, a blank line above the quote", "On Mon, 30 Nov 2026 at 09:12, Coworking Visa <visa@x.test>\nwrote:\n\n> confirm ABCD\n\nconfirm K7QX\n",
			[]string{"confirm K7QX", ""}},
		{"Thunderbird's short attribution", "Visa wrote:\n> confirm ABCD\nconfirm K7QX\n", []string{"confirm K7QX", ""}},
		{"German attribution", "Am 30.11.26 um 09:12 schrieb Visa:\n> confirm ABCD\nconfirm K7QX", []string{"confirm K7QX"}},
		{"reading stops at the next quote", "On Mon, Visa wrote:\n> a\n\nverify a@b.co\n> b\nafter\n", []string{"verify a@b.co"}},
		{"a quote without an attribution is not a reply quote", "> a\n\nverify a@b.co\n", nil},
		{"text between the attribution and the quote", "On Mon, Visa wrote:\nhello\n> a\nverify a@b.co\n", nil},
		{"a forward above the quote", "---------- Forwarded message ---------\nFrom: V <v@x>\n\nOn Mon, Visa wrote:\n> a\nverify a@b.co\n", nil},
		{"Outlook's header above the quote", "hi\nFrom: V <v@x>\nSent: Monday\nTo: M\n\nOn Mon, Visa wrote:\n> a\nverify a@b.co\n", nil},
		{"a signature above the quote", "-- \nAlex\nOn Mon, Visa wrote:\n> a\nverify a@b.co\n", nil},
		{"no quote", "verify a@b.co\n", nil},
		{"quote only", "On Mon, Visa wrote:\n> verify a@b.co\n", nil},
	} {
		got := BelowQuote(c.text)
		if strings.Join(got, "|") != strings.Join(c.want, "|") || (got == nil) != (c.want == nil) && len(c.want) > 0 {
			t.Errorf("%s: BelowQuote = %q, want %q", c.name, got, c.want)
		}
	}
}
