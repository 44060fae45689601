// Package packaging holds no code: it is the place of the files that run the
// mailbot on a server, and of the tests that check them with the tools that
// read them.
//
//   - mailbot.service: the systemd unit (DynamicUser, the store in
//     StateDirectory, secrets through LoadCredential=, a hardened sandbox).
//     The tests run systemd-analyze verify and systemd-analyze security on it.
//   - Containerfile and image-context: an image FROM scratch holding the
//     static binary, CA certificates and time zones, run as a non-root user.
//     The tests build it with buildah, offline, and run the binary in it.
//
// The README's "Running it as a service" tells an operator how to use them.
package packaging
