package handlers

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
)

type meBody struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	DisplayName   string `json:"display_name"`
	SessionID     string `json:"session_id"`
	EmailVerified bool   `json:"email_verified"`
}

// apiMe is GET /api/me.
func (s *Server) apiMe(c *fiber.Ctx) error {
	p := principal(c)
	return c.JSON(meBody{ID: p.UserID, Email: p.Email, DisplayName: p.DisplayName, SessionID: p.SessionID, EmailVerified: p.EmailVerified})
}

type sessionBody struct {
	ID         string    `json:"id"`
	DeviceName string    `json:"device_name"`
	Browser    string    `json:"browser"`
	OS         string    `json:"os"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	Current    bool      `json:"current"`
}

func sessionJSON(d auth.Session, current string) sessionBody {
	browser, os := auth.DescribeUserAgent(d.UserAgent)
	return sessionBody{ID: d.ID, DeviceName: d.DeviceName, Browser: browser, OS: os, IP: d.LastIP,
		CreatedAt: d.CreatedAt, LastUsedAt: d.LastUsedAt, Current: d.ID == current}
}

// apiSessions is GET /api/sessions.
func (s *Server) apiSessions(c *fiber.Ctx) error {
	p := principal(c)
	list, err := s.auth.Sessions(ctxOf(c), p.UserID)
	if err != nil {
		return err
	}
	out := make([]sessionBody, 0, len(list))
	for _, d := range list {
		out = append(out, sessionJSON(d, p.SessionID))
	}
	return c.JSON(out)
}

// apiDeleteSession is DELETE /api/sessions/{sid}: 404 for unknown or another user's session.
func (s *Server) apiDeleteSession(c *fiber.Ctx) error {
	if err := s.auth.SignOutDevice(ctxOf(c), principal(c).UserID, c.Params("sid"), s.ip(c)); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// apiRevokeOthers is POST /api/sessions/revoke-others.
func (s *Server) apiRevokeOthers(c *fiber.Ctx) error {
	if err := s.auth.SignOutOthers(ctxOf(c), principal(c), s.ip(c)); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// apiRevokeAll is POST /api/sessions/revoke-all: bumps token_version, signs out every device.
func (s *Server) apiRevokeAll(c *fiber.Ctx) error {
	if err := s.auth.SignOutEverywhere(ctxOf(c), principal(c), s.ip(c)); err != nil {
		return err
	}
	s.clearSessionCookies(c)
	return c.SendStatus(fiber.StatusNoContent)
}
