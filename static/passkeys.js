// Gatehouse passkeys: our own small script, no libraries. Each passkey form on a page
// (form[data-passkey], hidden until this script shows it) asks its options route for a WebAuthn
// ceremony, runs it with navigator.credentials, puts the answer in the form's hidden fields
// "ceremony" and "credential", and submits the form: the server answers it like any other form.
// On the sign-in page it also offers passkeys in the email field's autofill (conditional UI).
(function () {
  "use strict";

  // Pages may include the script once per passkey form; it sets itself up once.
  if (window.gatehousePasskeys) {
    return;
  }
  window.gatehousePasskeys = true;

  // Browsers offer WebAuthn only in a secure context and never on an IP address: without it, the
  // controls stay hidden and the password forms are the way in.
  function supported() {
    var host = window.location.hostname;
    var ipAddress = /^[0-9.]+$/.test(host) || host.indexOf(":") !== -1 || host.charAt(0) === "[";
    return !!window.PublicKeyCredential && !!navigator.credentials && !ipAddress;
  }

  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    if (!buffer) {
      return undefined;
    }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type, id: fromBase64url(d.id) };
      if (d.transports) {
        out.transports = d.transports;
      }
      return out;
    });
  }

  // creationOptions and requestOptions turn the server's JSON into what navigator.credentials
  // takes: every binary member is base64url in JSON and an ArrayBuffer for the browser.
  function creationOptions(json) {
    var o = Object.assign({}, json);
    o.challenge = fromBase64url(json.challenge);
    o.user = Object.assign({}, json.user, { id: fromBase64url(json.user.id) });
    o.excludeCredentials = descriptors(json.excludeCredentials);
    return o;
  }

  function requestOptions(json) {
    var o = Object.assign({}, json);
    o.challenge = fromBase64url(json.challenge);
    if (json.allowCredentials) {
      o.allowCredentials = descriptors(json.allowCredentials);
    }
    return o;
  }

  // credentialJSON is the browser's answer as the server parses it (WebAuthn's JSON encoding).
  function credentialJSON(cred) {
    var r = cred.response;
    var response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      response.userHandle = toBase64url(r.userHandle);
    }
    return JSON.stringify({
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: typeof cred.getClientExtensionResults === "function" ? cred.getClientExtensionResults() : {},
      response: response
    });
  }

  // say writes a message in the form's alert paragraph, which becomes an alert (role="alert")
  // as it does, so that screen readers announce it.
  function say(form, message) {
    var alert = form.querySelector("[data-passkey-alert]");
    if (!alert) {
      return;
    }
    if (message) {
      alert.setAttribute("role", "alert");
    }
    alert.textContent = message;
  }

  function explain(err, kind) {
    if (err && err.name === "NotAllowedError") {
      return "The passkey prompt was closed or timed out. Try again when you are ready.";
    }
    if (err && err.name === "InvalidStateError" && kind === "register") {
      return "This device already keeps a passkey for your account.";
    }
    if (err && err.name === "SecurityError") {
      return "This browser does not allow passkeys on this site.";
    }
    if (err && err.message && err.gatehouse) {
      return err.message;
    }
    return "Something went wrong with the passkey. Try again, or use another way.";
  }

  // options asks the form's options route for a ceremony: a form POST carrying the CSRF token
  // (and, to add a passkey, its name). A refusal may send the browser elsewhere (to confirm it's
  // you, or to sign in again).
  function options(form) {
    var body = new URLSearchParams();
    body.set("_csrf", form.elements._csrf.value);
    if (form.elements.name) {
      body.set("name", form.elements.name.value);
    }
    return fetch(form.dataset.options, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: body.toString()
    }).then(function (res) {
      return res.json().catch(function () {
        return {};
      }).then(function (data) {
        if (res.ok && data.publicKey) {
          return data;
        }
        if (data.location) {
          window.location.assign(data.location);
        }
        var err = new Error(data.message || "The passkey could not be started. Reload the page and try again.");
        err.gatehouse = true;
        throw err;
      });
    });
  }

  function submit(form, data, cred) {
    form.elements.ceremony.value = data.ceremony || "";
    form.elements.credential.value = credentialJSON(cred);
    form.submit();
  }

  // run performs the form's ceremony with the browser's modal passkey prompt.
  function run(form, button) {
    var kind = form.dataset.passkey;
    button.disabled = true;
    say(form, "");
    options(form).then(function (data) {
      if (kind === "register") {
        return navigator.credentials.create({ publicKey: creationOptions(data.publicKey) }).then(function (cred) {
          return [data, cred];
        });
      }
      return navigator.credentials.get({ publicKey: requestOptions(data.publicKey) }).then(function (cred) {
        return [data, cred];
      });
    }).then(function (done) {
      if (!done[1]) {
        throw new DOMException("no passkey", "NotAllowedError");
      }
      submit(form, done[0], done[1]);
    }).catch(function (err) {
      button.disabled = false;
      say(form, explain(err, kind));
    });
  }

  // conditional offers the person's passkeys in the email field's autofill; pressing the button
  // aborts it, since a page may run one WebAuthn request at a time.
  function conditional(form) {
    var pkc = window.PublicKeyCredential;
    if (typeof pkc.isConditionalMediationAvailable !== "function" || typeof AbortController === "undefined") {
      return null;
    }
    var controller = new AbortController();
    pkc.isConditionalMediationAvailable().then(function (available) {
      if (!available || controller.signal.aborted) {
        return;
      }
      return options(form).then(function (data) {
        if (controller.signal.aborted) {
          return;
        }
        return navigator.credentials.get({
          publicKey: requestOptions(data.publicKey),
          mediation: "conditional",
          signal: controller.signal
        }).then(function (cred) {
          if (cred) {
            submit(form, data, cred);
          }
        });
      });
    }).catch(function (err) {
      if (!controller.signal.aborted && err && err.name !== "AbortError") {
        say(form, explain(err, "login"));
      }
    });
    return controller;
  }

  function setUp(form) {
    var button = form.querySelector("[data-passkey-start]");
    if (!button) {
      return;
    }
    form.hidden = false;
    // A refused registration comes back with its error summary in this form, which was hidden
    // when the page loaded, so the summary's autofocus did not take: give it the focus now.
    var summary = form.querySelector(".error-summary");
    if (summary) {
      summary.focus();
    }
    var autofill = form.dataset.passkey === "login" ? conditional(form) : null;
    button.addEventListener("click", function () {
      if (autofill) {
        autofill.abort();
        autofill = null;
      }
      run(form, button);
    });
    // Enter in the name field starts the ceremony rather than posting an empty answer.
    form.addEventListener("submit", function (event) {
      if (!form.elements.credential.value) {
        event.preventDefault();
        button.click();
      }
    });
  }

  function start() {
    if (!supported()) {
      return;
    }
    var forms = document.querySelectorAll("form[data-passkey]");
    for (var i = 0; i < forms.length; i++) {
      setUp(forms[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
