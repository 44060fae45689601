package storage

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// A pseudonym stands for an address where the store must keep that
// something was done by or to one person but may no longer say who: the
// audit trail of someone who asked to be forgotten, or of someone off every
// roster for longer than privacy.retention. It is a keyed hash (HMAC-SHA256)
// of the address under a random key kept in the store, so the same person
// always gets the same pseudonym (their history still counts, and reads as
// one person's), while the address cannot be recovered from it, nor found
// by hashing guesses without the key.

// keyPseudonym in the meta bucket holds the key of pseudonyms.
var keyPseudonym = []byte("pseudonym_key")

// PseudonymPrefix begins every pseudonym, so that one is never taken for an
// address (it has no "@").
const PseudonymPrefix = "forgotten-"

// ensurePseudonymKey draws the key of pseudonyms where the store has none.
func ensurePseudonymKey(meta *bolt.Bucket) error {
	if meta.Get(keyPseudonym) != nil {
		return nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("draw the pseudonym key: %w", err)
	}
	if err := meta.Put(keyPseudonym, key); err != nil {
		return fmt.Errorf("write the pseudonym key: %w", err)
	}
	return nil
}

// pseudonym is the pseudonym of addr under key.
func pseudonym(key []byte, addr string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(addr))
	return PseudonymPrefix + hex.EncodeToString(m.Sum(nil)[:10])
}

// Pseudonym is the store's pseudonym for an address (canonical form).
func (t *Tx) Pseudonym(addr string) string {
	return pseudonym(t.bucket(bucketMeta).Get(keyPseudonym), addr)
}

// Pseudonym is Tx.Pseudonym outside a transaction: for keys that must not
// hold an address, such as the exactly-once record of a sender's message.
func (db *DB) Pseudonym(addr string) string { return pseudonym(db.pkey, addr) }

// IsPseudonym reports whether s is a pseudonym rather than an address.
func IsPseudonym(s string) bool { return strings.HasPrefix(s, PseudonymPrefix) }
