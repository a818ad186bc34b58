package auth

// SuccessorOf is the refresh token that rotating token yields on this service, derived exactly as
// Refresh derives it (successorKey). cmd/gatehouse-bench uses it to rotate with the bare SQL
// statement, "the limit", so that the limit hashes what the service hashes and its chains stay
// valid for the service. It gives a caller nothing that refreshing the token would not.
func (s *Service) SuccessorOf(token string) string { return s.successor.successor(token) }
