package main

import (
	"testing"
	"time"
)

// The render share reads two series of the route, and only of the route: /devices/:sid and other
// routes' series do not count, and the request time adds every method and status code up.
func TestParseRouteTimesReadsOneRoute(t *testing.T) {
	exposition := []byte(`# HELP gatehouse_page_render_seconds_total Time spent rendering pages.
# TYPE gatehouse_page_render_seconds_total counter
gatehouse_page_render_seconds_total{route="/devices"} 0.25
gatehouse_page_render_seconds_total{route="/devices/:sid"} 7
gatehouse_http_request_duration_seconds_bucket{code="200",method="GET",route="/devices",le="0.001"} 3
gatehouse_http_request_duration_seconds_sum{code="200",method="GET",route="/devices"} 1.5
gatehouse_http_request_duration_seconds_sum{code="303",method="GET",route="/devices"} 0.5
gatehouse_http_request_duration_seconds_sum{code="200",method="GET",route="/devices/:sid"} 9
gatehouse_http_request_duration_seconds_count{code="200",method="GET",route="/devices"} 40
`)
	got := parseRouteTimes(exposition, "/devices")
	if got.rendered != 250*time.Millisecond || got.handled != 2*time.Second {
		t.Errorf("rendered %s, handled %s; want 250ms and 2s", got.rendered, got.handled)
	}
}

func TestPageRowsCountsDevicesAndEvents(t *testing.T) {
	body := []byte(`<ul class="devices"><li class="device card current"></li><li class="device card"></li></ul>
<ul class="events"><li class="event"><span class="event-text">a</span></li><li class="event alarming"></li><li class="event"></li></ul>`)
	if devices, events := pageRows(body); devices != 2 || events != 3 {
		t.Errorf("%d devices and %d events, want 2 and 3", devices, events)
	}
}
