package trust

import (
	"bufio"
	"strings"
	"testing"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// parseHeader builds a header from raw lines as a server delivers them, so
// that field order is as in real mail. Lines end in "\n" in the test source
// and get CRLF here.
func parseHeader(t testing.TB, raw string) mail.Header {
	t.Helper()
	raw = strings.ReplaceAll(strings.TrimLeft(raw, "\n"), "\n", "\r\n")
	th, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(raw + "\r\n")))
	if err != nil {
		t.Fatalf("ReadHeader: %v\n%s", err, raw)
	}
	return mail.Header{Header: message.Header{Header: th}}
}

// Samples of real servers' headers, folded as they write them. The bot's
// receiving server is mx.example.org unless a case says otherwise.
const (
	fromMgr = "From: Indy Hall Manager <mgr@indyhall.test>\n"
	rest    = "To: visa@coworkingvisa.test\nSubject: verify alice@example.net\nDate: Mon, 3 Feb 2025 15:12:34 +0100\nMessage-ID: <abc@indyhall.test>\n"

	// Gmail as the bot's mailbox provider: authserv-id mx.google.com. The
	// ARC copy above the real field must not confuse anything.
	gmail = `Delivered-To: visa@coworkingvisa.test
Received: by 2002:a05:7010:6f8b:b0:41a:2c3b:1d2e with SMTP id x11csp2137469mdi;
        Mon, 3 Feb 2025 06:12:35 -0800 (PST)
ARC-Seal: i=1; a=rsa-sha256; t=1738591955; cv=none;
        d=google.com; s=arc-20240605;
        b=Jq0xY2ZtF3QhZ0Vt
ARC-Authentication-Results: i=1; mx.google.com;
       dkim=pass header.i=@indyhall.test header.s=20230601 header.b=abcDEF12;
       spf=pass (google.com: domain of mgr@indyhall.test designates 209.85.220.41 as permitted sender) smtp.mailfrom=mgr@indyhall.test;
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=indyhall.test
Return-Path: <mgr@indyhall.test>
Received: from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])
        by mx.google.com with SMTPS id 5b1f17b1804b1-43690c9cd7bsor2133645e9.3.2025.02.03.06.12.34
        for <visa@coworkingvisa.test>
        (Google Transport Security);
        Mon, 03 Feb 2025 06:12:35 -0800 (PST)
Received-SPF: pass (google.com: domain of mgr@indyhall.test designates 209.85.220.41 as permitted sender) client-ip=209.85.220.41;
Authentication-Results: mx.google.com;
       dkim=pass header.i=@indyhall.test header.s=20230601 header.b=abcDEF12;
       spf=pass (google.com: domain of mgr@indyhall.test designates 209.85.220.41 as permitted sender) smtp.mailfrom=mgr@indyhall.test;
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=indyhall.test
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
        d=indyhall.test; s=20230601; t=1738591954; x=1739196754;
        h=to:subject:message-id:date:from:mime-version:from:to:cc:subject
         :date:message-id:reply-to;
        bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
        b=abcDEF12
` + fromMgr + rest

	// Microsoft 365 writes no authserv-id at all: it can never be ours.
	m365 = `Received: from AM0PR01MB1234.eurprd01.prod.exchangelabs.com (2603:10a6:208:1::1)
 by AS8PR01MB5678.eurprd01.prod.exchangelabs.com with HTTPS; Mon, 3 Feb 2025
 14:12:36 +0000
Authentication-Results: spf=pass (sender IP is 209.85.128.52)
 smtp.mailfrom=indyhall.test; dkim=pass (signature was verified)
 header.d=indyhall.test;dmarc=pass action=none
 header.from=indyhall.test;compauth=pass reason=100
Received-SPF: Pass (protection.outlook.com: domain of indyhall.test designates
 209.85.128.52 as permitted sender) receiver=protection.outlook.com;
 client-ip=209.85.128.52; helo=mail-wm1-f52.google.com; pr=C
` + fromMgr + rest

	// Postfix with the OpenDKIM and OpenDMARC milters: one field each, with
	// the same authserv-id; OpenDMARC runs last and ends up on top.
	openDMARCOverOpenDKIM = `Return-Path: <mgr@indyhall.test>
Delivered-To: visa@coworkingvisa.test
Received: from mx.example.org
	by mx.example.org with LMTP
	id 3kKTDpzQoGfNSgAAm+8mCw
	(envelope-from <mgr@indyhall.test>)
	for <visa@coworkingvisa.test>; Mon, 03 Feb 2025 15:12:36 +0100
Authentication-Results: mx.example.org; dmarc=pass (p=none dis=none) header.from=indyhall.test
Authentication-Results: mx.example.org;
	dkim=pass (1024-bit key; unprotected) header.d=indyhall.test header.i=@indyhall.test header.a=rsa-sha256 header.s=default header.b="AbCd+/Ef";
	dkim-atps=neutral
Received: from mail.indyhall.test (mail.indyhall.test [198.51.100.7])
	by mx.example.org (Postfix) with ESMTPS id 4YmX1q2pZtz9sQ
	for <visa@coworkingvisa.test>; Mon,  3 Feb 2025 15:12:35 +0100 (CET)
` + fromMgr + rest

	// OpenDKIM alone.
	openDKIM = `Authentication-Results: mx.example.org;
	dkim=pass (1024-bit key; unprotected) header.d=indyhall.test header.i=@indyhall.test header.a=rsa-sha256 header.s=default header.b=AbCdEf;
	dkim-atps=neutral
Received: from mail.indyhall.test (mail.indyhall.test [198.51.100.7])
	by mx.example.org (Postfix) with ESMTPS id 4YmX1q2pZtz9sQ
	for <visa@coworkingvisa.test>; Mon,  3 Feb 2025 15:12:35 +0100 (CET)
` + fromMgr + rest

	// Fastmail as the bot's mailbox provider.
	fastmail = `Return-Path: <mgr@indyhall.test>
Received: from mx6.messagingengine.com (mx6.messagingengine.com [10.202.2.205])
	 by sloti45n12 (Cyrus 3.11.0-alpha0-1046-g8e4d9d6e7-fm-20250129.001-g8e4d9d6e) with LMTPA;
	 Mon, 03 Feb 2025 09:12:36 -0500
X-Spam-Score: -0.1
Authentication-Results: mx6.messagingengine.com;
    arc=none (no signatures found);
    dkim=pass (2048-bit rsa key sha256) header.d=indyhall.test
      header.i=@indyhall.test header.b=Ab3dEf5G header.a=rsa-sha256
      header.s=fm3 x-bits=2048;
    dmarc=pass policy.published-domain-policy=none
      policy.published-subdomain-policy=none
      policy.applied-disposition=none policy.evaluated-disposition=none
      (p=none,sp=none,d=none,d.eval=none) policy.policy-from=p
      header.from=indyhall.test;
    iprev=pass smtp.remote-ip=198.51.100.7 (mail.indyhall.test);
    spf=pass smtp.mailfrom=mgr@indyhall.test smtp.helo=mail.indyhall.test;
    x-aligned-from=pass (Address match);
    x-me-sender=none;
    x-ptr=pass smtp.helo=mail.indyhall.test policy.ptr=mail.indyhall.test
` + fromMgr + rest

	// Dovecot and Postfix with rspamd.
	rspamd = `Return-Path: <mgr@indyhall.test>
Delivered-To: visa@coworkingvisa.test
Authentication-Results: mx.example.org;
	dkim=pass header.d=indyhall.test header.s=mail header.b=Hu7Sbc2x;
	spf=pass (mx.example.org: domain of "mgr@indyhall.test" designates 198.51.100.7 as permitted sender) smtp.mailfrom="mgr@indyhall.test";
	dmarc=pass (policy=quarantine) header.from=indyhall.test;
	arc=none
` + fromMgr + rest
)

// ar makes a header with the given Authentication-Results values, topmost
// first, above a Received field, and a From.
func ar(from string, values ...string) string {
	var b strings.Builder
	for _, v := range values {
		b.WriteString("Authentication-Results: " + v + "\n")
	}
	b.WriteString("Received: from mail.indyhall.test by mx.example.org (Postfix); Mon,  3 Feb 2025 15:12:35 +0100\n")
	b.WriteString("From: " + from + "\n" + rest)
	return b.String()
}
