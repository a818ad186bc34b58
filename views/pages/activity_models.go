package pages

import "time"

// ActivityPage is the full security history (/account/activity), one page at a time, newest first.
type ActivityPage struct {
	Frame
	Now    time.Time
	Events []EventRow
	Older  string // the link to the next, older page ("/account/activity?before=123"); "" on the last page
	Newer  bool   // this is not the first page: link back to the newest
}

// SessionPage is one device session in detail (/devices/{sid}).
type SessionPage struct {
	Frame
	Now        time.Time
	ID         string
	Name       string
	Kind       string // "phone", "tablet", "computer" or "app" (auth.DescribeDeviceKind): the heading's icon
	UserAgent  string // in full
	Browser    string // e.g. "Firefox 127"
	OS         string
	FirstIP    string
	FirstPlace string // approximate location of FirstIP; may be empty
	LastIP     string
	LastPlace  string
	SignedInAt time.Time
	LastActive time.Time
	ExpiresAt  time.Time
	SignedIn   string     // how it signed in, in words ("Password and authenticator app")
	Current    bool       // this is the device looking at the page
	RevokedAt  *time.Time // set once it is signed out
	Events     []EventRow
}
