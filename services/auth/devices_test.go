package auth_test

import (
	"testing"

	"gatehouse/services/auth"
)

// Each row of "Your devices" shows a phone, a tablet, a computer or an app, told from the
// session's User-Agent header.
func TestDescribeDeviceKind(t *testing.T) {
	for _, c := range []struct{ name, ua, want string }{
		{"Safari on an iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", auth.DevicePhone},
		{"Chrome on an Android phone", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36", auth.DevicePhone},
		{"Firefox on an Android phone", "Mozilla/5.0 (Android 14; Mobile; rv:126.0) Gecko/126.0 Firefox/126.0", auth.DevicePhone},
		{"Safari on an iPad", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", auth.DeviceTablet},
		{"Chrome on an iPad", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/125.0.6422.80 Mobile/15E148 Safari/604.1", auth.DeviceTablet},
		{"Chrome on an Android tablet (no Mobile)", "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36", auth.DeviceTablet},
		{"Firefox on an Android tablet", "Mozilla/5.0 (Android 14; Tablet; rv:126.0) Gecko/126.0 Firefox/126.0", auth.DeviceTablet},
		{"Silk on a Kindle Fire", "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/124.2.1 like Chrome/124.0.6367.219 Safari/537.36", auth.DeviceTablet},
		{"Chrome on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36", auth.DeviceComputer},
		{"Firefox on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0", auth.DeviceComputer},
		{"Safari on macOS (or an iPad asking for the desktop site)", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", auth.DeviceComputer},
		{"Headless Chrome on Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", auth.DeviceComputer},
		{"Chrome on a Chromebook", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36", auth.DeviceComputer},
		{"curl", "curl/8.5.0", auth.DeviceApp},
		{"an Android app's HTTP client", "okhttp/4.12.0", auth.DeviceApp},
		{"an Android app's default header", "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UD1A)", auth.DeviceApp},
		{"an iPhone app", "Gatehouse-iOS/2.3 (iPhone; iOS 17.2)", auth.DeviceApp},
		{"a crawler", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", auth.DeviceApp},
		{"no header", "", auth.DeviceApp},
		{"blank", "   ", auth.DeviceApp},
	} {
		if got := auth.DescribeDeviceKind(c.ua); got != c.want {
			t.Errorf("%s: %q, want %q (%q)", c.name, got, c.want, c.ua)
		}
	}
}
