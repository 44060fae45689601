package metrics

// family is one documented metric: its name, type and HELP text. The
// README's "Health and metrics" lists the same, with alert rules.
type family struct {
	name, typ, help string
}

// families are every metric of the daemon's own.
func families() []family {
	return []family{
		{"mailbot_messages_total", "counter",
			"Messages taken from the inbox, by outcome (handled, set_aside, quarantined, deferred) and reason."},
		{"mailbot_commands_total", "counter",
			"Commands carried out, by command and by the status word of their result."},
		{"mailbot_message_handling_seconds", "histogram",
			"Time from the inbox handing a message over to its disposition (commit included)."},
		{"mailbot_breaker_trips_total", "counter",
			"Openings of the global circuit breaker (limits.replies_per_minute)."},
		{"mailbot_outbox_sent_total", "counter", "Messages the submission server accepted, by kind."},
		{"mailbot_outbox_failed_total", "counter", "Send attempts that failed and will be tried again, by kind."},
		{"mailbot_outbox_dropped_total", "counter",
			"Messages given up on, by kind and reason (rejected: refused for good; expired: past outbox.give_up_after)."},
		{"mailbot_outbox_held_total", "counter",
			"Messages held because the process died while sending them, several times in a row."},
		{"mailbot_outbox_depth", "gauge", "Messages waiting in the outbox, by kind (held ones not counted)."},
		{"mailbot_outbox_oldest_age_seconds", "gauge",
			"Age of the oldest message waiting in the outbox, by kind; 0 when none waits."},
		{"mailbot_outbox_held_messages", "gauge", "Messages held in the outbox until an operator releases them."},
		{"mailbot_store_writable", "gauge", "1 while the store can be written; 0 while intake is paused because it cannot (a full disk, a read-only file system)."},
		{"mailbot_digests_queued_total", "counter", "Weekly digest messages put in the outbox, by audience (space, network)."},
		{"mailbot_imap_connected", "gauge", "1 while logged in to the IMAP server with the mailbox selected, else 0."},
		{"mailbot_imap_last_reached_timestamp_seconds", "gauge",
			"When the inbox was last reached (Unix time): now while waiting on a live connection, else the server's last answer."},
		{"mailbot_imap_last_sweep_timestamp_seconds", "gauge",
			"When a sweep of the inbox last completed (Unix time)."},
		{"mailbot_oauth2_token_refreshes_total", "counter", "Attempts to get an OAuth2 access token, by result (ok, error)."},
	}
}

// known looks a family up by name.
func known(name string) (family, bool) {
	for _, f := range families() {
		if f.name == name {
			return f, true
		}
	}
	return family{}, false
}
