package auth

// ForceTransactionalRefresh makes s decide every refresh in a transaction, as on SQLite, so that
// one rotation suite covers both the one-statement path and the transactional one on PostgreSQL.
func ForceTransactionalRefresh(s *Service) { s.transactionalRefresh = true }
