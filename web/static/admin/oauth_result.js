/* The OAuth result page: in the popup opened by the settings page, tell the opener and close; in the
 * same window, go back to the integration. Data: the JSON block #cs-oauth-result. */
(function () {
  "use strict";
  var block = document.getElementById("cs-oauth-result");
  if (!block) return;
  var data = JSON.parse(block.textContent);
  // The address carries amoCRM's one-time code: out of the address bar and the history at once.
  if (window.history && window.history.replaceState) window.history.replaceState(null, "", window.location.pathname);
  var msg = {chatsource: data.chatsource, ok: data.ok, integration: data.integration, return_to: data.return_to};
  if (window.opener && window.opener !== window) {
    try { window.opener.postMessage(msg, window.location.origin); } catch (e) {}
    setTimeout(function () { window.close(); }, 200);
  } else if (msg.return_to) {
    setTimeout(function () { window.location.replace(msg.return_to); }, data.delay_ms);
  }
})();
