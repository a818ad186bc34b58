package auth

import (
	"strings"

	"github.com/mssola/useragent"
)

// DescribeUserAgent turns a User-Agent header into a browser ("Firefox 121") and an OS ("macOS").
func DescribeUserAgent(ua string) (browser, os string) {
	if strings.TrimSpace(ua) == "" {
		return "", ""
	}
	parsed := useragent.New(ua)
	name, version := parsed.Browser()
	if major, _, _ := strings.Cut(version, "."); name != "" && major != "" {
		browser = name + " " + major
	} else {
		browser = name
	}
	return browser, osName(parsed.OSInfo().Name, parsed.Platform())
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
	browser, os := DescribeUserAgent(ua)
	name, _, _ := strings.Cut(browser, " ")
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
