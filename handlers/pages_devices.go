package handlers

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
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
			ID: d.ID, Name: d.DeviceName, Browser: browser, OS: os, IP: d.LastIP, SignedInAt: d.CreatedAt,
			LastActiveAt: d.LastUsedAt, Current: d.ID == p.SessionID, RenameValue: d.DeviceName,
		})
	}
	for _, e := range events {
		page.Events = append(page.Events, pages.EventRow{Text: eventText(e.Kind), DeviceName: e.DeviceName, IP: e.IP, At: e.At, Alarming: alarming(e.Kind)})
	}
	return page, nil
}

func eventText(kind auth.EventKind) string {
	switch kind {
	case auth.EventSignedIn:
		return "New sign-in"
	case auth.EventSignedOut:
		return "Device signed out"
	case auth.EventSignedOutOthers:
		return "Other devices signed out"
	case auth.EventSignedOutEverywhere:
		return "Signed out everywhere"
	case auth.EventPasswordChanged:
		return "Password changed"
	case auth.EventTokenReused:
		return "Replayed refresh token detected: device signed out"
	case auth.EventUserDisabled:
		return "Account disabled"
	case auth.EventSignInFailed:
		return "Wrong password entered at sign-in"
	case auth.EventPasswordCheckFailed:
		return "Wrong current password entered while signed in"
	case auth.EventSessionEvicted:
		return "Oldest device signed out: too many devices signed in"
	case auth.EventPasswordReset:
		return "Password reset with an emailed link: every device signed out"
	case auth.EventEmailVerified:
		return "Email address verified"
	case auth.EventEmailChanged:
		return "Email address changed"
	case auth.EventEmailChangeUndone:
		return "Email change undone from the old address: every device signed out"
	}
	return string(kind)
}

// alarming: events that may mean someone else has the account.
func alarming(kind auth.EventKind) bool {
	return kind == auth.EventTokenReused || kind == auth.EventSignInFailed || kind == auth.EventPasswordCheckFailed
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
