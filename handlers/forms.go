package handlers

import (
	"bytes"

	"github.com/gofiber/fiber/v2"
)

// formValue reads a field of a form body (urlencoded or multipart). Unlike Fiber's FormValue it
// never falls back to the query string, so no password or CSRF token is taken from a URL, where
// logs, history and Referer headers keep it. Bodies are never inflated: refuseEncodedBodies
// answers 415 to any Content-Encoding before a form is read.
func formValue(c *fiber.Ctx, key string) string {
	req := c.Request()
	if bytes.HasPrefix(bytes.ToLower(req.Header.ContentType()), []byte(fiber.MIMEMultipartForm)) {
		form, err := req.MultipartForm()
		if err != nil || len(form.Value[key]) == 0 {
			return ""
		}
		return form.Value[key][0]
	}
	return string(req.PostArgs().Peek(key))
}

// refuseEncodedBodies answers 415 to a request whose body is compressed (any Content-Encoding but
// identity), before anything reads it: inflating a small body into a huge one is a memory bomb,
// and no client of Gatehouse needs to compress what it sends.
func refuseEncodedBodies(c *fiber.Ctx) error {
	ce := c.Request().Header.Peek(fiber.HeaderContentEncoding)
	if len(ce) > 0 && !bytes.EqualFold(bytes.TrimSpace(ce), []byte("identity")) {
		return errEncodedBody
	}
	return c.Next()
}
