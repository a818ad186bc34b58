package handlers

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
	"gatehouse/views/components"
	"gatehouse/views/pages"
)

// activityPageSize is how many events one page of /account/activity shows.
const activityPageSize = 50

// activityPage is GET /account/activity?before=ID: the full security history, newest first.
func (s *Server) activityPage(c *fiber.Ctx) error {
	p := principal(c)
	var before int64
	if raw := c.Query("before"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 1 {
			return apiError(fiber.StatusBadRequest, "invalid_request", "That page of activity does not exist. Start from the newest.")
		}
		before = n
	}
	activity, err := s.auth.ActivityPage(ctxOf(c), p.UserID, before, activityPageSize)
	if err != nil {
		return err
	}
	page := pages.ActivityPage{Frame: s.frame(c, "Security activity"), Now: s.now(), Newer: before > 0}
	for _, e := range activity.Events {
		page.Events = append(page.Events, eventRow(e))
	}
	if activity.Older > 0 {
		page.Older = "/account/activity?before=" + strconv.FormatInt(activity.Older, 10)
	}
	return render(c, pages.Activity(page))
}

// sessionPage is GET /devices/{sid}: one of the person's device sessions in detail.
func (s *Server) sessionPage(c *fiber.Ctx) error {
	p := principal(c)
	d, err := s.auth.SessionDetailsOf(ctxOf(c), p.UserID, c.Params("sid"))
	if err != nil {
		return err
	}
	browser, os := auth.DescribeUserAgent(d.UserAgent)
	page := pages.SessionPage{Frame: s.frame(c, d.DeviceName), Now: s.now(), ID: d.ID, Name: d.DeviceName, Kind: auth.DescribeDeviceKind(d.UserAgent), UserAgent: d.UserAgent,
		Browser: browser, OS: os, FirstIP: d.CreatedIP, FirstPlace: s.locate(d.CreatedIP), LastIP: d.LastIP, LastPlace: s.locate(d.LastIP),
		SignedInAt: d.CreatedAt, LastActive: d.LastUsedAt, ExpiresAt: d.ExpiresAt, SignedIn: components.SignInMethod(d.AMR),
		Current: d.ID == p.SessionID, RevokedAt: d.RevokedAt}
	for _, e := range d.Events {
		page.Events = append(page.Events, eventRow(e))
	}
	return render(c, pages.SessionDetails(page))
}
