// Package passkeytest is a passkey authenticator in software for tests: the handlers' and the
// service's passkey tests share it (test files cannot be imported across packages).
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator is a passkey authenticator in software, and the browser around it: it makes
// ES256 discoverable credentials with attestation "none", keeps each one's user handle and
// signature counter, and answers the options a ceremony sends as a browser would (the JSON that
// passkeys.js posts). Origin and RPID are what it puts in clientDataJSON and hashes into the
// authenticator data; a test changes them, or a credential's counter, to forge a bad answer.
type Authenticator struct {
	Origin string
	RPID   string
}

// Credential is one passkey the authenticator keeps.
type Credential struct {
	ID         []byte
	Key        *ecdsa.PrivateKey
	UserHandle []byte
	Counter    uint32 // the last counter signed; the next answer signs Counter+1
}

var b64 = base64.RawURLEncoding

// creationOptions and requestOptions are the parts of a ceremony's publicKey options it reads.
type creationOptions struct {
	Challenge string `json:"challenge"`
	RP        struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
}

type requestOptions struct {
	Challenge        string `json:"challenge"`
	AllowCredentials []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
}

// Create makes a new passkey for the options of a registration ceremony and answers with it.
func (a *Authenticator) Create(t testing.TB, options []byte) ([]byte, *Credential) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	cred := &Credential{ID: id, Key: key}
	return a.Attest(t, options, cred), cred
}

// Attest answers the options of a registration ceremony with cred (a new passkey, or one
// registered already, to try registering it twice). It takes the user handle the options name.
func (a *Authenticator) Attest(t testing.TB, options []byte, cred *Credential) []byte {
	t.Helper()
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("registration options: %v: %s", err, options)
	}
	handle, err := b64.DecodeString(o.User.ID)
	if err != nil {
		t.Fatalf("user id %q: %v", o.User.ID, err)
	}
	cred.UserHandle = handle
	point, err := cred.Key.PublicKey.Bytes() // uncompressed: 0x04, X, Y
	if err != nil {
		t.Fatal(err)
	}
	x, y := point[1:33], point[33:65]
	coseKey, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	if err != nil {
		t.Fatal(err)
	}
	attested := make([]byte, 16) // AAGUID: none
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(cred.ID)))
	attested = append(attested, cred.ID...)
	attested = append(attested, coseKey...)
	const flags = 0x01 | 0x04 | 0x40 // user present, user verified, attested credential data
	authData := append(a.authData(flags, cred.Counter), attested...)
	attestation, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(cred.ID), "rawId": b64.EncodeToString(cred.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"attestationObject": b64.EncodeToString(attestation),
			"clientDataJSON":    b64.EncodeToString(a.clientData("webauthn.create", o.Challenge)),
			"transports":        []string{"internal"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Get answers the options of a sign-in or confirmation ceremony with cred: it signs the next
// counter over the authenticator data and the client data, as an authenticator does.
func (a *Authenticator) Get(t testing.TB, options []byte, cred *Credential) []byte {
	t.Helper()
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("request options: %v: %s", err, options)
	}
	cred.Counter++
	const flags = 0x01 | 0x04 // user present, user verified
	authData := a.authData(flags, cred.Counter)
	clientData := a.clientData("webauthn.get", o.Challenge)
	clientHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte{}, authData...), clientHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, cred.Key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(cred.ID), "rawId": b64.EncodeToString(cred.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"authenticatorData": b64.EncodeToString(authData),
			"clientDataJSON":    b64.EncodeToString(clientData),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(cred.UserHandle),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func (a *Authenticator) authData(flags byte, counter uint32) []byte {
	rpHash := sha256.Sum256([]byte(a.RPID))
	data := append(rpHash[:], flags)
	return binary.BigEndian.AppendUint32(data, counter)
}

func (a *Authenticator) clientData(kind, challenge string) []byte {
	data, _ := json.Marshal(map[string]any{"type": kind, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return data
}

// WithChallenge is options with their challenge replaced: an answer to a ceremony never begun.
func WithChallenge(t testing.TB, options []byte) []byte {
	t.Helper()
	var o map[string]any
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatal(err)
	}
	o["challenge"] = b64.EncodeToString([]byte("a challenge the server never sent"))
	out, _ := json.Marshal(o)
	return out
}
