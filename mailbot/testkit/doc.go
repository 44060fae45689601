// Package testkit groups the test equipment: nothing under it ships in the
// mailbot binary. Its packages start real servers on loopback from private
// configurations (mailstack: Dovecot and Postfix; dnsstack: dnsmasq;
// verifier: OpenDKIM and OpenDMARC as Postfix's milters), sign mail with
// real DKIM keys (signer) and write mail the way real clients write it
// (clientmail), for the integration tests (mailbot/itest), the chaos test
// and the benchmark (cmd/mailbench).
package testkit
