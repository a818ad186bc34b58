package auth

import "context"

// CompleteSecondFactorWithPasskey finishes a sign-in's second step with a passkey's answer to the
// challenge's WebAuthn ceremony (BeginSecondFactorPasskey).
//
// TODO(passkeys): being written; until then every answer is refused.
func (s *Service) CompleteSecondFactorWithPasskey(ctx context.Context, challenge string, response []byte, c Client) (*Issued, error) {
	return nil, ErrPasskeyRefused
}

// ConfirmWithPasskey re-authenticates the user on this device with a passkey.
//
// TODO(passkeys): being written; until then every answer is refused.
func (s *Service) ConfirmWithPasskey(ctx context.Context, p *Principal, ceremony string, response []byte, ip string) error {
	return ErrPasskeyRefused
}
