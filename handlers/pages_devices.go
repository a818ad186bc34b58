package handlers

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
	"gatehouse/views/components"
	"gatehouse/views/pages"
)

const eventsShown = 20

// devicesPage is GET /devices: "Your devices" and recent security activity.
func (s *Server) devicesPage(c *fiber.Ctx) error {
	page, err := s.devicesModel(c)
	if err != nil {
		return err
	}
	return render(c, pages.Devices(*page))
}

func (s *Server) devicesModel(c *fiber.Ctx) (*pages.DevicesPage, error) {
	p := principal(c)
	ctx := ctxOf(c)
	sessions, err := s.auth.Sessions(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	events, err := s.auth.Events(ctx, p.UserID, eventsShown)
	if err != nil {
		return nil, err
	}
	page := &pages.DevicesPage{Frame: s.frame(c, "Your devices"), Now: s.now()}
	for _, d := range sessions {
		browser, os := auth.DescribeUserAgent(d.UserAgent)
		page.Devices = append(page.Devices, pages.DeviceRow{
			ID: d.ID, Name: d.DeviceName, Kind: auth.DescribeDeviceKind(d.UserAgent), Browser: browser, OS: os, IP: d.LastIP, Location: s.locate(d.LastIP), SignedInAt: d.CreatedAt,
			LastActiveAt: d.LastUsedAt, Current: d.ID == p.SessionID, RenameValue: d.DeviceName,
			SignedInWith: components.SignInMethod(d.AMR),
		})
	}
	for _, e := range events {
		page.Events = append(page.Events, eventRow(e))
	}
	return page, nil
}

// eventRow says in plain language what an event means and, where it matters, what to do.
func eventRow(e auth.Event) pages.EventRow {
	row := pages.EventRow{IP: e.IP, At: e.At, Alarming: alarming(e.Kind)}
	row.Text = eventText(e.Kind, e.DeviceName, e.Detail)
	switch e.Kind {
	case auth.EventRecoveryCodeUsed:
		row.Advice = "If this wasn't you, change your password and make new recovery codes."
		row.AdviceLink, row.AdviceLinkText = "/account/security", "Review your sign-in security"
	case auth.EventSecondFactorFailed:
		row.Advice = "Someone who knows your password may be trying to get in. If this wasn't you, change your password."
		row.AdviceLink, row.AdviceLinkText = "/account", "Change your password"
	case auth.EventFactorRemoved, auth.EventFactorsReset:
		row.Advice = "If this wasn't you, change your password and add a second factor again."
		row.AdviceLink, row.AdviceLinkText = "/account/security", "Review your sign-in security"
	case auth.EventTokenReused:
		row.Advice, row.AdviceLink, row.AdviceLinkText = "If this wasn't you, change your password.", "/account", "Change your password"
	case auth.EventSignInFailed:
		row.Advice, row.AdviceLink, row.AdviceLinkText = "If this wasn't you, your password kept them out. If it is easy to guess, change it.", "/account", "Change your password"
	case auth.EventPasswordCheckFailed:
		row.Advice = "If this wasn't you, sign that device out and change your password."
		row.AdviceLink, row.AdviceLinkText = "/account", "Change your password"
	case auth.EventPasswordReset:
		row.Advice = "If this wasn't you, someone can read your email: secure your email account, then reset your password again."
		row.AdviceLink, row.AdviceLinkText = "/password/forgot", "Reset your password"
	case auth.EventEmailChanged:
		row.Advice = "If this wasn't you, open the undo link we sent to your old address."
	}
	return row
}

// eventText is what happened, as a sentence; device is the device's name, which may be empty, and
// detail the factor's name or, for a sign-in, how it signed in (its amr).
func eventText(kind auth.EventKind, device, detail string) string {
	on, named := " on "+device, device
	if device == "" {
		on, named = "", "A device"
	}
	switch kind {
	case auth.EventAccountCreated:
		return "Your account was created."
	case auth.EventSignedIn:
		if how := components.SignInMethod(strings.Fields(detail)); how != "" {
			return "New sign-in" + on + " (" + strings.ToLower(how) + ")."
		}
		return "New sign-in" + on + "."
	case auth.EventTOTPAdded:
		return "An authenticator app was added" + factorLabel(detail) + ": sign-ins now ask for its code."
	case auth.EventPasskeyAdded:
		return "A passkey was added" + factorLabel(detail) + "."
	case auth.EventFactorRemoved:
		return "A second factor was removed" + factorLabel(detail) + "."
	case auth.EventRecoveryCodesMade:
		return "New recovery codes were made; the old ones no longer work."
	case auth.EventRecoveryCodeUsed:
		return "A recovery code was used to sign in" + on + "."
	case auth.EventSecondFactorFailed:
		return "A wrong second-factor code was entered after a correct password."
	case auth.EventFactorsReset:
		return "An administrator removed your second factors and passkeys: your password alone signs in."
	case auth.EventSignedOut:
		return named + " was signed out."
	case auth.EventSignedOutOthers:
		return "All your other devices were signed out" + on + "."
	case auth.EventSignedOutEverywhere:
		return "You signed out everywhere: every device was signed out."
	case auth.EventPasswordChanged:
		return "Your password was changed" + on + ", and every other device was signed out."
	case auth.EventTokenReused:
		if device == "" {
			device = "one of your devices"
		}
		return "Someone may have a copy of your sign-in on " + device + "; we signed that device out."
	case auth.EventUserDisabled:
		return "Your account was disabled by an administrator, and every device was signed out."
	case auth.EventSignInFailed:
		return "Someone tried to sign in to your account with a wrong password."
	case auth.EventPasswordCheckFailed:
		return "A wrong current password was entered" + on + " while signed in."
	case auth.EventSessionEvicted:
		return named + " was signed out because too many devices were signed in; the one unused the longest goes first."
	case auth.EventPasswordReset:
		return "Your password was reset with an emailed link, and every device was signed out."
	case auth.EventEmailVerified:
		return "Your email address was verified."
	case auth.EventEmailChanged:
		return "Your email address was changed."
	case auth.EventEmailChangeUndone:
		return "An email change was undone from your old address, and every device was signed out."
	}
	return string(kind)
}

// factorLabel quotes a factor's name after what happened to it: ` ("Rae's phone")`.
func factorLabel(name string) string {
	if name == "" {
		return ""
	}
	return ` ("` + name + `")`
}

// alarming: events that may mean someone else has the account.
func alarming(kind auth.EventKind) bool {
	return kind == auth.EventTokenReused || kind == auth.EventSignInFailed || kind == auth.EventPasswordCheckFailed ||
		kind == auth.EventSecondFactorFailed
}

// renameDevice is POST /devices/{sid}/rename.
func (s *Server) renameDevice(c *fiber.Ctx) error {
	p, sid, name := principal(c), c.Params("sid"), formValue(c, "name")
	err := s.auth.RenameDevice(ctxOf(c), p.UserID, sid, name)
	var invalid *auth.ValidationError
	if errors.As(err, &invalid) {
		page, perr := s.devicesModel(c)
		if perr != nil {
			return perr
		}
		found := false
		for i := range page.Devices {
			if page.Devices[i].ID == sid {
				page.Devices[i].RenameError, page.Devices[i].RenameValue, found = invalid.Message, name, true
			}
		}
		if !found {
			return errNotFound
		}
		c.Status(fiber.StatusBadRequest)
		return render(c, pages.Devices(*page))
	}
	if err != nil {
		return err
	}
	return c.Redirect("/devices?done=renamed", fiber.StatusSeeOther)
}

// signoutDevice is POST /devices/{sid}/signout; signing out this device goes to sign-in.
func (s *Server) signoutDevice(c *fiber.Ctx) error {
	p, sid := principal(c), c.Params("sid")
	if err := s.auth.SignOutDevice(ctxOf(c), p.UserID, sid, s.ip(c)); err != nil {
		return err
	}
	if sid == p.SessionID {
		s.clearSessionCookies(c)
		return c.Redirect("/login", fiber.StatusSeeOther)
	}
	return c.Redirect("/devices?done=signed-out", fiber.StatusSeeOther)
}

// signoutOthers is POST /devices/signout-others.
func (s *Server) signoutOthers(c *fiber.Ctx) error {
	return s.reauthenticated(c, "sign out all other devices", func() error {
		if err := s.auth.SignOutOthers(ctxOf(c), principal(c), s.ip(c)); err != nil {
			return err
		}
		return c.Redirect("/devices?done=others", fiber.StatusSeeOther)
	})
}

// confirmSignoutEverywhere is GET /devices/signout-everywhere: the confirmation step.
func (s *Server) confirmSignoutEverywhere(c *fiber.Ctx) error {
	return render(c, pages.ConfirmSignoutEverywhere(pages.ConfirmSignoutEverywherePage{Frame: s.frame(c, "Sign out everywhere?")}))
}

// signoutEverywhere is POST /devices/signout-everywhere: bump token_version, sign out every
// device including this one, and go to sign-in.
func (s *Server) signoutEverywhere(c *fiber.Ctx) error {
	return s.reauthenticated(c, "sign out everywhere", func() error {
		if err := s.auth.SignOutEverywhere(ctxOf(c), principal(c), s.ip(c)); err != nil {
			return err
		}
		s.clearSessionCookies(c)
		return c.Redirect("/login", fiber.StatusSeeOther)
	})
}
