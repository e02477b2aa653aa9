// Chatsource main tracking code. Served per site as GET /t/<site_key>.js with the site's settings
// in C (see web/tracking.py, which minifies it and puts them in place of CHATSOURCE_CONFIG).
// ES5 only, no dependencies; every step is wrapped so that a failure never breaks the page.
// Written for its gzipped size (budget 1,500 bytes, tests/web/test_tracking_http.py): !0 / !1 are
// true / false, L is location; the server minifies it and shortens the local names.
//   C.k  site key          C.e  collect url (POST /t/collect)
//   C.d  the site's domain (cookie domain)        C.v  script version
// Public API: Chatsource.getSessionId(), .getVisitorId(), .messengerClick(service, link),
// .onReady(fn) — fn(sessionId, visitorId)
// runs once the server has confirmed the session; the "chatsource:session" event on window fires
// on that and on every later change (new campaign in a single-page app, return after 30 idle min).
(function (w, d, C) {
  var old = w.Chatsource;
  if (old && old.version) return;
  var IDLE = 18e5, VID = '_cs_vid', SID = '_cs_sid';
  var queue = (old && old._q) || [], mem = {}, mode = 0, TAB = 1, COOKIE = 2;
  var L = location, host = L.hostname, cookieDomain = '', T = '_cs_t';
  var sid = null, vid = null, ready = !1, last = 0, lastHref = href();
  var D = C.d;
  if (D && (host == D || host.slice(-D.length - 1) == '.' + D) && !/^[\d.]+$|:/.test(host)) cookieDomain = D;

  function now() { return +new Date(); }
  // The address without its #fragment: an in-page anchor is not a page view.
  function href() { return L.href.split('#')[0]; }

  // Storage (mode): first-party cookies; when cookies are blocked, this tab's sessionStorage; else memory (0).
  function readCookie(n) {
    var m = d.cookie.match(new RegExp('(?:^|; )' + n + '=([^;]*)'));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function writeCookie(n, v, age) {
    d.cookie = n + '=' + encodeURIComponent(v) + '; path=/; max-age=' + age +
      (cookieDomain ? '; domain=' + cookieDomain : '') + '; SameSite=Lax' + (L.protocol == 'https:' ? '; Secure' : '');
  }
  function get(n) {
    try {
      if (mode == COOKIE) return readCookie(n);
      if (mode) return w.sessionStorage.getItem(n);
    } catch (e) {}
    return mem[n] || null;
  }
  function set(n, v, age) {
    mem[n] = v;
    try {
      if (mode == COOKIE) writeCookie(n, v, age);
      else if (mode) w.sessionStorage.setItem(n, v);
    } catch (e) {}
  }
  try {
    writeCookie(T, 1, 60);
    if (readCookie(T) != 1 && cookieDomain) { cookieDomain = ''; writeCookie(T, 1, 60); }
    if (readCookie(T) == 1) { mode = COOKIE; writeCookie(T, '', 0); }
  } catch (e) {}
  if (!mode) {
    try { w.sessionStorage.setItem(T, 1); mode = TAB; } catch (e) {}
  }

  vid = get(VID);
  // The stored session: "id.lastActivityMs"; not offered to the server once idle by our clock.
  var stored = (get(SID) || '').split('.');
  var storedSid = stored[0] && now() - (+stored[1] || 0) < IDLE ? stored[0] : null;
  if (storedSid) last = +stored[1];

  function remember() {
    last = now();
    if (sid) set(SID, sid + '.' + last, 1800);
  }

  function announce(changed) {
    var first = !ready;
    ready = !0;
    if (first) while (queue.length) call(queue.shift());
    if (first || changed) {
      // (Internet Explorer has no CustomEvent constructor: there onReady alone tells.)
      try { w.dispatchEvent(new CustomEvent('chatsource:session', {detail: {sessionId: sid, visitorId: vid}})); } catch (e) {}
    }
  }
  function call(f) {
    try { f(sid, vid); } catch (e) { setTimeout(function () { throw e; }); }
  }

  function answered(r) {
    if (!r) return failed();
    // The visitor id lives a year from the last visit.
    if (r.visitor_id) { vid = r.visitor_id; set(VID, vid, 31536e3); }
    if (!r.session_id) { if (!r.tracked) sid = null; return; }
    var id = '' + r.session_id, changed = id != sid;
    sid = storedSid = id;
    remember();
    announce(changed);
  }
  function failed() {
    // The server is out of reach: go on with the stored session while it is fresh.
    if (!sid && storedSid) { sid = storedSid; announce(!0); }
  }

  // `click` (messenger_click only): [service, link] of the chat button's icon.
  function send(event, referrer, withAnswer, click) {
    var body = JSON.stringify({
      site_key: C.k, event: event, visitor_id: vid, session_id: sid || storedSid,
      url: L.href, referrer: referrer, title: d.title,
      service: click && click[0], link: click && click[1]
    });
    try {
      if (!withAnswer && navigator.sendBeacon && navigator.sendBeacon(C.e, body)) return;
      if (!w.fetch) return failed();
      // A text/plain body is a "simple" CORS request: no preflight round trip.
      // No credentials option: a cross-origin fetch sends no cookies by default.
      w.fetch(C.e, {method: 'POST', body: body, keepalive: !0})
        .then(function (res) { return res.ok ? res.json() : null; })
        .then(withAnswer ? answered : null, failed);
    } catch (e) { failed(); }
  }

  function view(referrer) {
    lastHref = href();
    send('view', referrer, !0);
  }

  // Single-page apps: a pushState / back-forward navigation is a page view.
  function routed() {
    if (href() != lastHref) view(lastHref);
  }
  try {
    var push = history.pushState;
    history.pushState = function () {
      var r = push.apply(this, arguments);
      setTimeout(routed);
      return r;
    };
    w.addEventListener('popstate', routed);
  } catch (e) {}

  // Activity: going to the background extends the session (no answer needed: a beacon); coming
  // back after the idle limit asks for the session again (it may be a new one).
  d.addEventListener('visibilitychange', function () {
    if (d.visibilityState == 'hidden') {
      if (sid && now() - last > 6e4) { send('ping'); remember(); }
    } else if (sid && now() - last > IDLE) {
      storedSid = null;
      view(d.referrer);
    }
  });

  w.Chatsource = {
    version: C.v,
    getSessionId: function () { return sid; },
    getVisitorId: function () { return vid; },
    // The script for your site calls this from the chat button's onButtonClick(service, link).
    messengerClick: function (service, link) {
      if (service && (sid || storedSid)) send('messenger_click', null, !1, [('' + service).slice(0, 50), link ? ('' + link).slice(0, 500) : null]);
    },
    onReady: function (f) {
      if (typeof f != 'function') return;
      if (ready) call(f); else queue.push(f);
    }
  };
  view(d.referrer);
})(window, document, CHATSOURCE_CONFIG);
