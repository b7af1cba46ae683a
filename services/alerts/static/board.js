// The duty board's live updates. The team's stream (server-sent events, the session cookie)
// says that something happened to one of its alerts; the server renders the rows again
// (/board/rows) and they replace the table body. Nothing is built from data here: the rows
// come escaped from the server, and what is announced is set as text.
(function () {
  "use strict";
  var table = document.getElementById("alerts");
  var status = document.getElementById("live-status");
  var announce = document.getElementById("announce");
  if (!table || !table.dataset.streamUrl || !window.EventSource || !window.fetch) return;
  var busy = false, again = false;

  function ids(body) {
    return new Set(Array.from(body.querySelectorAll("tr[data-alert-id]"),
                              function (row) { return row.dataset.alertId; }));
  }

  function stopped(words) {
    table.dataset.live = "off";
    status.textContent = words;
  }

  function swap(html) {
    var old = table.tBodies[0];
    var template = document.createElement("template");
    template.innerHTML = html;
    var fresh = template.content.querySelector("tbody");
    if (!old || !fresh) return;
    var before = ids(old);
    var focused = old.contains(document.activeElement) ? document.activeElement : null;
    var focusRow = focused && focused.closest("tr") ? focused.closest("tr").dataset.alertId : null;
    var focusHref = focused ? focused.getAttribute("href") : null;
    old.replaceWith(fresh);
    if (focusRow && focusHref) {  // keep the keyboard where it was
      var same = fresh.querySelector('tr[data-alert-id="' + CSS.escape(focusRow) + '"] a[href="' +
                                     CSS.escape(focusHref) + '"]');
      if (same) same.focus();
    }
    var added = Array.from(fresh.querySelectorAll("tr[data-alert-id]"))
      .filter(function (row) { return !before.has(row.dataset.alertId); });
    added.forEach(function (row) { row.classList.add("is-new"); });
    if (added.length === 1) {
      announce.textContent = "New alert: " + added[0].dataset.title;
    } else if (added.length > 1) {
      announce.textContent = added.length + " new alerts, the first: " + added[0].dataset.title;
    }
  }

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do {
        again = false;
        var answer = await fetch(table.dataset.rowsUrl, {
          credentials: "same-origin", cache: "no-store", headers: {"Accept": "text/html"}});
        if (!answer.ok) {
          source.close();
          stopped(answer.status === 401 ? "You have been signed out: sign in again to see new alerts."
                                        : "Live updates stopped: reload the page.");
          return;
        }
        swap(await answer.text());
      } while (again);
    } catch (e) {
      status.textContent = "Could not fetch the alerts: trying again with the next update.";
    } finally {
      busy = false;
    }
  }

  var source = new EventSource(table.dataset.streamUrl);
  source.addEventListener("open", function () {
    table.dataset.live = "on";
    status.textContent = "Live: changes to the team's alerts appear here as they happen.";
    refresh();  // whatever happened between rendering the page and connecting
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      stopped("Live updates stopped: reload the page.");
    } else {
      table.dataset.live = "off";
      status.textContent = "Reconnecting to live updates…";
    }
  });
  table.dataset.actions.split(" ").forEach(function (action) {
    source.addEventListener(action, refresh);
  });
  source.onmessage = refresh;
})();
