package mailbot

import (
	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/mailbot/metrics"
)

// tally is what one message's transaction did, for the metrics. It is
// counted only once the transaction committed: a transaction that failed
// and is tried again must not count its commands twice.
type tally struct {
	reason metrics.Reason
	ran    []ranCommand
}

// ranCommand is one command carried out and the status word it got.
type ranCommand struct {
	name   string
	status commands.Status
}

// commands notes each command of a report with the status of its result
// (Execute gives one result per command item, in order).
func (t *tally) commands(r commands.Report) {
	i := 0
	for _, it := range r.Items {
		if it.Command == nil || i >= len(r.Results) {
			continue
		}
		t.ran = append(t.ran, ranCommand{it.Command.Name, r.Results[i].Status})
		i++
	}
}

// count counts a committed message: handled, for t's reason, and its
// commands.
func (b *Bot) count(t tally) {
	b.set.Metrics.Message(metrics.Handled, t.reason)
	for _, c := range t.ran {
		b.set.Metrics.Command(c.name, string(c.status))
	}
}
