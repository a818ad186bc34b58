package auth

import (
	"strings"

	"github.com/mssola/useragent"
)

// DescribeUserAgent turns a User-Agent header into a browser ("Firefox 121") and an OS ("macOS").
func DescribeUserAgent(ua string) (browser, os string) {
	name, major, os := parseUserAgent(ua)
	if name != "" && major != "" {
		return name + " " + major, os
	}
	return name, os
}

// parseUserAgent reads the browser's name ("Headless Chrome"), its major version and the OS.
func parseUserAgent(ua string) (name, major, os string) {
	if strings.TrimSpace(ua) == "" {
		return "", "", ""
	}
	parsed := useragent.New(ua)
	name, version := parsed.Browser()
	major, _, _ = strings.Cut(version, ".")
	return name, major, osName(parsed.OSInfo().Name, parsed.Platform())
}

func osName(name, platform string) string {
	switch {
	case name == "Mac OS X" || platform == "Macintosh":
		return "macOS"
	case strings.HasPrefix(name, "Windows"):
		return "Windows"
	case name == "iPhone OS" || platform == "iPhone" || platform == "iPad":
		return "iOS"
	case name == "":
		return platform
	}
	return name
}

// DefaultDeviceName names a device from its user agent, such as "Firefox on macOS". The result
// always passes ValidateDeviceName, whatever the header held.
func DefaultDeviceName(ua string) string {
	name, _, os := parseUserAgent(ua)
	name, os = strings.TrimSpace(cleanText(name, 32)), strings.TrimSpace(cleanText(os, 24))
	switch {
	case name != "" && os != "":
		name = name + " on " + os
	case name == "":
		name = os
	}
	if valid, err := ValidateDeviceName("name", name); err == nil {
		return valid
	}
	return "Unknown device"
}

// The kinds of device DescribeDeviceKind tells apart; each is also the id of its icon in
// static/icons.svg.
const (
	DevicePhone    = "phone"
	DeviceTablet   = "tablet"
	DeviceComputer = "computer"
	DeviceApp      = "app" // a program that is not a browser, or a client that sent no user agent
)

// DescribeDeviceKind says from a User-Agent header whether a session is on a phone, a tablet, a
// computer or in an app, so that "Your devices" can draw each row's icon. Every current browser's
// header starts with "Mozilla/"; anything else (curl, okhttp, Dalvik, an app's own name) and a
// bot is an app. An iPad, and an Android browser that does not say "Mobile" (Chrome's tablet
// convention) or says "Tablet" (Firefox's), is a tablet. An iPad asking for the desktop site
// reads as a Mac: its header cannot tell them apart.
func DescribeDeviceKind(ua string) string {
	ua = strings.TrimSpace(ua)
	if !strings.HasPrefix(ua, "Mozilla/") {
		return DeviceApp
	}
	parsed := useragent.New(ua)
	switch {
	case parsed.Bot():
		return DeviceApp
	case parsed.Platform() == "iPad", strings.Contains(ua, "Tablet"),
		strings.Contains(ua, "Android") && !strings.Contains(ua, "Mobile"):
		return DeviceTablet
	case parsed.Mobile():
		return DevicePhone
	}
	return DeviceComputer
}
