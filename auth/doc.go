// Package auth is the one way in to an account and its sessions: signup,
// login, token checks, logout, the session list and ending a session all go
// through Accounts. It signs tokens, hashes passwords and throttles failed
// logins; session.Manager beneath it keeps the session records and their
// cache, and only Accounts starts or ends them (events only listens to
// session.Manager.OnEnd, to close the sockets of ended sessions).
package auth
