// localtime.js: every exact time on the page is rendered in UTC ("10 Mar 2026, 12:04 UTC"); here,
// where the browser knows the person's time zone, it is rewritten into that zone, naming it
// ("10 Mar 2026, 13:04 CET"). Without JavaScript the UTC text stays, and says so.
(function () {
  "use strict";
  function rewrite() {
    var format;
    try {
      format = new Intl.DateTimeFormat(undefined, {
        day: "numeric", month: "short", year: "numeric",
        hour: "2-digit", minute: "2-digit", timeZoneName: "short"
      });
    } catch (e) {
      return; // no Intl: UTC it is
    }
    var spans = document.querySelectorAll("span.exact-time[data-utc]");
    for (var i = 0; i < spans.length; i++) {
      var at = new Date(spans[i].getAttribute("data-utc"));
      if (isNaN(at.getTime())) {
        continue;
      }
      spans[i].textContent = "(" + format.format(at) + ")";
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", rewrite);
  } else {
    rewrite();
  }
})();
